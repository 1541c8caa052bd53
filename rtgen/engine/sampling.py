"""Choosing the next token from fused probabilities: filters, masks and the choice itself.

Pure functions over a 1-D tensor of token probabilities [V] (``choose_from``:
a list, the engine's per-step path); every random choice draws from a caller's
``torch.Generator`` (or takes the caller's uniform draw), so one seed gives one output.

Choice (``Controls.sampling``):

* ``sample``: draw from the (filtered) distribution, as the fiddle paper did.
* ``argmax``: the likeliest token; deterministic, and prone to loops.
* ``hybrid``: argmax when the distribution is confident (its top probability
  reaches ``HYBRID_CONFIDENCE``), otherwise sample. Why this hybrid and not
  "argmax for timing, sample for pitch": a confident step is almost always a
  structural one (closing a note, the shift to the next beat, the velocity a
  phrase keeps), where a stray sampled token only breaks the rhythm; an
  uncertain step is a real musical choice (which pitch, whether to rest),
  where sampling brings variety and keeps argmax from locking into a loop. It
  needs no knowledge of token kinds, so it works for every encoding.

Everything works on non-negative token weights [V] that need not sum to 1
(fused probabilities times 0/1 masks), so masking is one in-place multiply.
Masks (built once per controls change): scale lock and pitch range restrict
note-on tokens; PAD and SEP are never generated live.
``Controls.key`` "auto" comes from ``detect_key`` (Krumhansl-Schmuckler correlation, Aarden-Essen profiles).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate

import torch
from torch import Tensor

from rtgen.controls import ControlError

HYBRID_CONFIDENCE = 0.5  # top probability at or above which ``hybrid`` takes the argmax

PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10, 11),  # natural minor plus the leading tone of harmonic minor
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
# Aarden-Essen key profiles (how often each scale degree sounds in the Essen folksongs; music21's default for
# analyze("key")), index 0 = tonic. A call is a bar or two: with Krumhansl-Kessler's probe-tone ratings, which
# give chromatic notes almost the weight of scale notes, two-bar openings got the key signature of their piece's
# first 8 bars in 0.42 of folk and 0.63 of chorale pieces; with these, 0.77 and 0.90 (docs/music.md).
MAJOR_PROFILE = (17.77, 0.146, 14.93, 0.160, 19.80, 11.36, 0.291, 22.06, 0.146, 8.155, 0.233, 4.951)
MINOR_PROFILE = (18.26, 0.738, 14.05, 16.86, 0.702, 14.44, 0.702, 18.62, 4.566, 1.932, 7.376, 1.756)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def parse_key(text: str) -> tuple[int, str]:
    """ "D minor", "f# dorian", "Bb major", "C" -> (tonic pitch class 0-11, scale name)."""
    parts = text.strip().split()
    if not 1 <= len(parts) <= 2 or not parts[0] or parts[0][0].lower() not in PITCH_CLASSES:
        raise ControlError(f"key {text!r} not understood; expected e.g. 'D minor', 'Bb major', 'A dorian' or 'auto'")
    name = parts[0].lower()
    tonic = PITCH_CLASSES[name[0]]
    for accidental in name[1:]:
        if accidental not in "#b":
            raise ControlError(f"key {text!r}: {parts[0]!r} is not a note name like C, F#, Bb")
        tonic += 1 if accidental == "#" else -1
    scale = parts[1].lower() if len(parts) == 2 else "major"
    if scale not in SCALES:
        raise ControlError(f"key {text!r}: scale {scale!r} is not one of {', '.join(SCALES)}")
    return tonic % 12, scale


def detect_key(pitches_and_weights: Iterable[tuple[int, float]]) -> tuple[int, str]:
    """Krumhansl-Schmuckler: the (tonic, "major"|"minor") whose profile best correlates with the pitch-class histogram.

    ``pitches_and_weights`` are (MIDI pitch, weight) pairs, weight usually the
    note's duration in beats. An empty phrase gives C major.
    """
    histogram = torch.zeros(12, dtype=torch.float64)
    for pitch, weight in pitches_and_weights:
        histogram[pitch % 12] += float(weight)
    if float(histogram.sum()) <= 0:
        return 0, "major"
    best, best_r = (0, "major"), -2.0
    for scale, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        base = torch.tensor(profile, dtype=torch.float64)
        for tonic in range(12):
            r = _correlation(histogram, torch.roll(base, tonic))
            if r > best_r + 1e-12:
                best, best_r = (tonic, scale), r
    return best


def _correlation(a: Tensor, b: Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def key_name(tonic: int, scale: str) -> str:
    return f"{NOTE_NAMES[tonic % 12]} {scale}"


def scale_pitches(tonic: int, scale: str) -> Tensor:
    """Boolean [128]: MIDI pitches in the scale."""
    classes = torch.zeros(12, dtype=torch.bool)
    classes[[(tonic + step) % 12 for step in SCALES[scale]]] = True
    return classes.repeat(11)[:128]


def token_mask(encoding, allowed_pitches: Tensor, *, forbid: Iterable[int] = ()) -> Tensor:
    """Multiplicative mask [V] (1.0 or 0.0): note-ons outside ``allowed_pitches`` [128] bool, and ``forbid`` ids.

    A chord token is masked when any pitch of its set is outside.
    """
    mask = torch.ones(len(encoding), dtype=torch.float32)
    mask[[t for p in torch.nonzero(~allowed_pitches).flatten().tolist() for t in encoding.pitch_tokens(p)]] = 0.0
    mask[list(forbid)] = 0.0
    return mask


def allowed_pitches(pitch_min: int, pitch_max: int, key: tuple[int, str] | None) -> Tensor:
    """Boolean [128]: pitches a note-on may have (range, and the scale when ``key`` is given)."""
    allowed = torch.zeros(128, dtype=torch.bool)
    allowed[pitch_min : pitch_max + 1] = True
    if key is not None:
        allowed &= scale_pitches(*key)
        if not bool(allowed.any()):
            raise ControlError(f"no pitch of {key_name(*key)} lies in {pitch_min}-{pitch_max}")
    return allowed


def top_k_(probs: Tensor, k: int) -> Tensor:
    """Keep the k likeliest tokens of probabilities [V] (in place; others 0). k <= 0 or >= V leaves it alone."""
    if 0 < k < probs.numel():
        threshold = torch.topk(probs, k).values[-1]
        probs.masked_fill_(probs < threshold, 0.0)
    return probs


def top_p_(probs: Tensor, p: float) -> Tensor:
    """Nucleus: keep the smallest set of likeliest tokens holding mass p (in place). p >= 1 is off.

    ``probs`` need not sum to 1; p is a share of their sum.
    """
    if p >= 1.0:
        return probs
    ordered, order = torch.sort(probs, descending=True, stable=True)  # ties keep index order: argmax stays
    before = ordered.cumsum(dim=0) - ordered  # mass of the likelier tokens
    probs[order[before >= p * float(ordered.sum())]] = 0.0
    return probs


def choose(probs: Tensor, sampling: str, generator: torch.Generator | None = None, *, draw: float | None = None) -> int:
    """One token id from non-negative weights [V] (any scale; zeros never chosen) by sample/argmax/hybrid."""
    return choose_from(probs.tolist(), sampling, generator, draw=draw)


def choose_from(
    values: list[float], sampling: str, generator: torch.Generator | None = None, *, draw: float | None = None
) -> int:
    """``choose`` over a list of weights: plain Python (accumulate + bisect), no numpy or torch op.

    The engine samples right after its models' advance has streamed ~13 MB of
    weights through the caches; each numpy or torch call then costs 30-80 us
    of cold code and data, while the interpreter's own loops stay warm (a few
    us). ``draw``: a uniform number in [0, 1) to use instead of one from
    ``generator`` (the engine draws them in batches).
    """
    if sampling == "argmax":
        return max(range(len(values)), key=values.__getitem__)
    cumulative = list(accumulate(values))
    total = cumulative[-1]
    if not total > 0:
        raise ControlError("every token is masked out; widen the pitch range or loosen the scale lock")
    if sampling == "hybrid":
        top = max(range(len(values)), key=values.__getitem__)
        if values[top] >= HYBRID_CONFIDENCE * total:
            return top
    elif sampling != "sample":
        raise ControlError(f"sampling {sampling!r} is not one of sample, argmax, hybrid")
    if draw is None:
        draw = torch.rand(1, generator=generator).item()
    index = bisect_right(cumulative, draw * total)
    if index >= len(values):  # rounding at the top: the last token with weight
        index = max(i for i, value in enumerate(values) if value > 0)
    return index
