"""The n-gram baseline's figures kept on disk, so that a second ``rtgen eval`` skips the fit.

Fitting Kneser-Ney orders 1..5 on a genre's training stream and scoring its
validation stream takes minutes on a laptop core for the larger corpora, and
the answer depends only on the two token streams and the baseline's
settings. So the figures are stored as JSON under
``paths.cache_dir() / "ngram"``, named by a digest of exactly those inputs:
the training stream, the scored validation head, vocabulary size, highest
order, padding token and ``SMOOTHING`` (change it whenever
``rtgen.nets.ngram`` changes what it computes). Other data never reads
these figures; the same data always finds them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np

from rtgen import paths

SMOOTHING = "interpolated-kneser-ney-1"  # the estimator, in the key; a new name when rtgen.nets.ngram changes


def baseline_key(train: np.ndarray, valid: np.ndarray, vocab: int, max_order: int, pad_id: int) -> str:
    """Hex digest of everything the figures depend on (streams as int64, so their dtype does not matter)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{SMOOTHING}|{vocab}|{max_order}|{pad_id}|{train.size}|{valid.size}|".encode())
    digest.update(np.ascontiguousarray(train, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(valid, dtype=np.int64).tobytes())
    return digest.hexdigest()


def cached_figures(key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """(figures, True) from the cache, else (``compute()``, False) after storing it under ``key``.

    ``ngram_ce_by_order`` is keyed by order: JSON writes those keys as
    strings, so they are turned back into ints on the way out.
    """
    path = paths.cache_dir() / "ngram" / f"{key}.json"
    figures = _read(path)
    if figures is not None:
        return figures, True
    figures = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(figures))
    partial.replace(path)
    return figures, False


def _read(path) -> dict | None:
    """The stored figures, or None when absent or damaged (then they are computed again and overwritten)."""
    try:
        figures = json.loads(path.read_text())
        figures["ngram_ce_by_order"] = {int(k): v for k, v in figures["ngram_ce_by_order"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError is a ValueError
        return None
    return figures
