"""Timing figures for the real-time threads: percentiles, and garbage-collector pauses.

A collection of the oldest generation can stop every Python thread for tens of
milliseconds once models and corpora fill the heap; ``freeze_gc`` moves
everything alive at startup out of the collector's reach, and ``GcMonitor``
measures the pauses that remain so the daemon can report them.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence


def spin_until(deadline_s: float, now: Callable[[], float] = time.perf_counter) -> None:
    """Busy-wait until ``now()`` reaches ``deadline_s``: for the last fraction of a millisecond before a send,
    where a sleep would wake too late."""
    while now() < deadline_s:
        continue


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1, nearest rank) of an already sorted sequence; 0.0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of values in seconds, as milliseconds."""
    ordered = sorted(values_s)
    return {
        "p50_ms": percentile(ordered, 0.50) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1e3,
    }


def freeze_gc() -> int:
    """Collect once, then freeze every surviving object (models, corpora) out of later collections.

    Call after the models are loaded and before the music starts; returns the
    number of objects frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcMonitor:
    """Times every garbage collection through ``gc.callbacks`` while installed."""

    def __init__(self) -> None:
        self.pauses = 0
        self.total_s = 0.0
        self.max_s = 0.0
        self._started: float | None = None
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def reset(self) -> None:
        self.pauses = 0
        self.total_s = 0.0
        self.max_s = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        pause = time.perf_counter() - self._started
        self._started = None
        self.pauses += 1
        self.total_s += pause
        self.max_s = max(self.max_s, pause)
