"""What a controls value means for the stepping engine, built once when the controls change.

``derive`` turns ``Controls`` into the tensors a step reads (normalised
weights on the model device, the multiplicative token mask, the key, the note
length in grid steps), so the step itself computes nothing from the controls.
Errors raise here, naming the control, before the engine takes the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rtgen.controls import CONTROLS, ControlError, normalise
from rtgen.data.profile import FormProfile, blend
from rtgen.encoding import EventEncoding
from rtgen.engine.controls import Controls
from rtgen.engine.form import soften_out_of_key
from rtgen.engine.sampling import allowed_pitches, detect_key, parse_key, scale_pitches, token_mask
from rtgen.engine.steering import register_weights
from rtgen.nets.twophase import TWO_PHASE_MODEL

# Methods played by one genre-conditioned model fed the weights: the installed model each plays, and what it is.
MODEL_METHODS = {
    "conditional": ("multi", "the multi-genre model (models/multi)"),
    "two-phase": (TWO_PHASE_MODEL, "the two-phase model (models/two-phase, from `rtgen train --arch two-phase`)"),
}

VOCABULARY_BOUND = tuple(entry for entry in CONTROLS.values() if entry.hard[1] is None)


@dataclass(frozen=True)
class Derived:
    """Tensors built once per controls value; the stepping thread only reads them."""

    controls: Controls
    auto_key: tuple[int, str] | None  # the detected key this was built for (key "auto" only)
    weights: Tensor  # [K] normalised weights, on the model device
    single: int  # index of the only genre with weight > 0, or -1
    mask: np.ndarray  # [V] float32 multiplicative mask: pitch range, scale, PAD, SEP (key prior: fractions)
    loose_mask: np.ndarray  # ``mask`` without the key prior: played while rtgen is no more out of key than the genres
    out_of_key: tuple[bool, ...] | None  # [128] pitches outside the key prior's key; None without a key prior
    key: tuple[int, str] | None  # the scale lock's key, None when unlocked
    max_note_steps: int  # grid steps a note may sound before it is closed
    genre_input: tuple[float, ...] | None  # the genre vector of the model a ``MODEL_METHODS`` method plays
    inverse_temperature: float  # logits are multiplied by this (1 / temperature)
    form: FormProfile  # the weighted genres' form, measured from their corpora (rtgen.data.profile)


def derive(
    controls: Controls,
    auto_key: tuple[int, str] | None,
    encoding,
    genres: Sequence[str],
    conditional_genres: Sequence[str] | None,
    device: torch.device,
    twophase_genres: Sequence[str] | None = None,
) -> Derived:
    """The tensors a step reads for ``controls``.

    ``genres``: the genre models loaded (empty: none); ``conditional_genres``
    and ``twophase_genres``: the genres of the multi and the two-phase model,
    None when that model is not loaded.
    """
    for entry in VOCABULARY_BOUND:  # ranges that end at the loaded vocabulary's size (top_k)
        entry.check(getattr(controls, entry.name), vocab_size=len(encoding))
    known = set(genres) | set(conditional_genres or ()) | set(twophase_genres or ())
    unknown = sorted(set(controls.weights) - known)
    if unknown:
        raise ControlError(f"weight for {unknown[0]!r}, but no such genre is loaded ({', '.join(sorted(known))})")
    if controls.method in MODEL_METHODS:
        model_genres = conditional_genres if controls.method == "conditional" else twophase_genres
        if model_genres is None:
            raise ControlError(f"method {controls.method!r} needs {MODEL_METHODS[controls.method][1]}; none is loaded")
        genre_input = controls.normalised_weights(model_genres)
        weights = normalise([1.0] * len(genres)) if genres else ()
    elif not genres:
        raise ControlError(f"method {controls.method!r} needs genre models; only a genre-conditioned one is loaded")
    else:
        genre_input = None
        weights = controls.normalised_weights(genres)
    nonzero = [i for i, x in enumerate(weights) if x > 0]
    key = None
    if controls.scale_lock or controls.key_prior > 0:
        key = parse_key(controls.key) if controls.key != "auto" else (auto_key or detect_key([]))
    allowed = allowed_pitches(controls.pitch_min, controls.pitch_max, key if controls.scale_lock else None)
    mask = token_mask(encoding, allowed, forbid=(encoding.pad_id, encoding.sep_id)).numpy()
    form = blend({genre: weight for genre, weight in controls.weights.items() if weight > 0})
    loose, out_of_key = mask.copy(), None
    is_event = isinstance(encoding, EventEncoding)  # key and register weights reshape event note-ons
    if controls.key_prior > 0 and not controls.scale_lock and is_event:
        in_key = scale_pitches(*key)
        soften_out_of_key(mask, encoding, in_key, 1.0 - controls.key_prior)
        out_of_key = tuple((~in_key).tolist())
    if controls.register and is_event:
        on = encoding.on_base
        pull = np.asarray(register_weights(controls.register, controls.register_width), np.float32)
        mask[on : on + 128] *= pull
        loose[on : on + 128] *= pull
    return Derived(
        controls=controls,
        auto_key=auto_key,
        weights=torch.tensor(weights, dtype=torch.float32, device=device),
        single=nonzero[0] if len(nonzero) == 1 else -1,
        mask=mask,
        loose_mask=loose if out_of_key is not None else mask,
        out_of_key=out_of_key,
        key=key,
        max_note_steps=max(1, round(controls.max_note_beats * encoding.steps_per_beat)),
        genre_input=genre_input,
        inverse_temperature=1.0 / controls.temperature,
        form=form,
    )
