"""Shipping a trained checkpoint: its weights in float16 where the live step allows, else float32.

The seed papers' networks ship under ``models/zoo/NAME/`` (``rtgen models
--ship RUN``), and the whole ``models/`` folder must stay small enough to
commit, so each is stored at half width when that changes nothing a listener
or a figure could notice: the float16-rounded weights must give every
next-token log-probability (a VAE: every decoded step probability) within
``MAX_DRIFT`` of the float32 model's on the same inputs. ``load_model``
widens the weights back to float32, so stepping and scoring are float32
arithmetic either way.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from rtgen.nets.checkpoint import META, WEIGHTS, load_model, read_meta, write_meta
from rtgen.nets.vae import PhraseVAE

# Largest change (nats of log-probability; a VAE: step probability) half width may cause over random inputs, the
# worst case: the shipped fiddle and chorale models move by 0.041 there, and by 5e-6 nats/token of validation
# cross-entropy (accuracy 1e-4) on 20,000 real tokens (rtgen eval --max-tokens 20000, float32 beside float16)
MAX_DRIFT = 0.05
CHECK_TOKENS = 256  # random tokens (a VAE: random latent points) the check runs through both models
COPIED = ("loss.png",)  # beside weights and meta.json


def half_drift(model, vocab_size: int, seed: int = 0) -> float:
    """The largest output change when ``model``'s floating weights are rounded to float16 and widened back."""
    generator = torch.Generator().manual_seed(seed)
    halved = _rounded_copy(model)
    with torch.inference_mode():
        if isinstance(model, PhraseVAE):  # compare decoded step probabilities
            z = torch.randn(CHECK_TOKENS, model.config.latent_dim, generator=generator)
            return float((model.decode(z) - halved.decode(z)).abs().max())
        tokens = torch.randint(1, vocab_size, (1, CHECK_TOKENS), generator=generator)
        return float((_log_probs(model, tokens) - _log_probs(halved, tokens)).abs().max())


def _rounded_copy(model):
    halved = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in halved.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return halved.eval()


def _log_probs(model, tokens: torch.Tensor) -> torch.Tensor:
    """Every step's next-token log-probabilities [T, V] over ``tokens`` [1, T], stepped as the engine steps."""
    state, rows = model.initial_state(1), []
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state)
        rows.append(torch.log_softmax(logits[0].float(), dim=-1))
    return torch.stack(rows)


def ship(run: str | Path, dest: str | Path, max_drift: float = MAX_DRIFT) -> dict:
    """Copy the checkpoint in ``run`` to ``dest`` in float16 when its drift allows; returns what was written.

    ``dest`` may be ``run`` itself: a genre model trained straight into ``models/NAME`` is halved in place."""
    run, dest = Path(run), Path(dest)
    loaded = load_model(run, kind=None)
    drift = half_drift(loaded.model, len(loaded.encoding))
    dtype = torch.float16 if drift <= max_drift else torch.float32
    state = {
        name: (t.to(dtype) if t.is_floating_point() else t).detach().cpu().contiguous()
        for name, t in loaded.model.state_dict().items()
    }
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / (WEIGHTS + ".partial")
    save_file(state, str(partial))
    partial.replace(dest / WEIGHTS)
    meta = read_meta(run / WEIGHTS)
    meta["shipped"] = {"from": str(run), "weights_dtype": str(dtype).removeprefix("torch."), "half_drift": drift}
    write_meta(dest, meta)
    for name in COPIED:
        if (run / name).exists() and run.resolve() != dest.resolve():
            shutil.copyfile(run / name, dest / name)
    size = sum((dest / name).stat().st_size for name in (WEIGHTS, META))
    return {"folder": str(dest), "bytes": size, **meta["shipped"]}
