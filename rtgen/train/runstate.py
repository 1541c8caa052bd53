"""What every trainer keeps between epochs and writes at its end: resume state and how the run ended.

The token trainer (``rtgen.train.loop``) and the phrase-VAE trainer
(``rtgen.train.phrases``) share one format, so ``rtgen train --resume`` and
``meta.json`` read the same for every architecture.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import TRAIN_STATE, WEIGHTS, load_train_state, read_meta, write_meta

TIME_CAP = "time budget"  # metrics.stopped_by of a run its max_minutes safety cap cut: figures depend on the machine


def train_state(model, optimizer, history: list[dict], seconds: float, sampler_rng: torch.Tensor) -> dict:
    """Resume state: model and optimizer tensors, the epochs so far, seconds trained, both generators."""
    return {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "history": history,
        "elapsed_s": seconds,
        "sampler_rng": sampler_rng,
        "torch_rng": torch.get_rng_state(),
    }


def resume_state(out: Path, model, optimizer) -> dict:
    """Load ``out``'s resume state into model and optimizer (and torch's generator); the state, or a one-line error."""
    state = load_train_state(out)
    if state is None:
        raise RtgenError(f"nothing to resume in {out} (no {TRAIN_STATE})")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise RtgenError(f"{out / TRAIN_STATE}: does not fit this run's network ({first})") from None
    torch.set_rng_state(state["torch_rng"])
    return state


def record_finish(out: Path, history: list[dict], seconds: float, reason: str, **extra) -> dict:
    """Write how training ended (epochs, seconds, tokens, reason) to meta.json and drop the resume state."""
    meta = read_meta(out / WEIGHTS)
    meta["history"] = history
    meta["metrics"].update(
        epochs=len(history),
        train_seconds=round(seconds, 1),
        train_tokens=sum(h["tokens"] for h in history),
        stopped_by=reason,
    )
    meta.update(extra)
    write_meta(out, meta)
    (out / TRAIN_STATE).unlink(missing_ok=True)
    return meta
