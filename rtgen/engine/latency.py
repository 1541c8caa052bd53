"""What one engine step costs: seconds per ``step()`` from warm state, as the engine thread pays it.

``rtgen bench step`` times it against the papers' windowed approach and
``rtgen eval zoo`` beside each model's figures; both ask here, so the two
tables time the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence


def time_fused_steps(models: Sequence, steps: int, method: str = "mixture", **controls: object) -> list[float]:
    """Seconds per ``Engine.step`` over ``steps`` steps from warm state (after a 100-step warm-up).

    The collector is frozen first, as the daemon does once its models are loaded, so a full
    collection over the loaded heap is not timed as a step.
    """
    from rtgen.engine.controls import Controls
    from rtgen.engine.warm import Engine
    from rtgen.live.timing import freeze_gc

    genres = [f"g{i}" for i in range(len(models))]
    settings = Controls(weights={g: float(i + 1) for i, g in enumerate(genres)}, method=method, **controls)
    engine = Engine(genres, models, settings, seed=0, threads=None)
    engine.prime([])
    for _ in range(100):
        engine.step()
    freeze_gc()
    return time_engine_steps(engine, steps)


def time_engine_steps(engine, steps: int) -> list[float]:
    """Seconds per ``engine.step()``, ``steps`` times."""
    timings = []
    for _ in range(steps):
        tick = time.perf_counter()
        engine.step()
        timings.append(time.perf_counter() - tick)
    return timings
