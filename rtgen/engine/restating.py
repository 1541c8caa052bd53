"""What a restatement or an echo plays: a window of a section's event tokens, its bars marked to vary.

``rtgen.engine.sections`` decides when a section (or one bar of it) is
stated again; these pure functions cut the tokens it queues. Per queued
section they walk its tokens once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def varied_share(variation: float, literal: float) -> float:
    """Share of a restatement's bars re-sampled: 0 at ``variation`` 0, the genre's (1 - ``literal``) at 0.5, 1 at 1."""
    own = 1.0 - literal
    return 2 * variation * own if variation <= 0.5 else own + (2 * variation - 1) * (1 - own)


def restatement(
    encoding,
    tokens: Sequence[int],
    steps: int,
    bar_steps: int,
    varied: set[int],
    pick: Callable[[int], set[int]] | None = None,
) -> list[tuple[int, bool]]:
    """Event ``tokens`` over exactly ``steps`` grid steps, less offs of earlier notes; (token, to re-sample).

    Cut at ``steps`` (the note-offs there kept), or padded with rest to it.

    Of the note-ons in a bar (counted from 0) of ``varied``, those ``pick(count)``
    names (indices among that bar's ``count`` note-ons) are marked to be
    re-sampled; every one without ``pick``.
    """
    enc, out, begun, now = encoding, [], set(), 0
    ons: dict[int, list[int]] = {}  # varied bar -> indices in ``out`` of its note-ons
    for token in tokens:
        is_off = enc.off_base <= token < enc.shift_base
        if now >= steps and not is_off:  # at the end only the note-offs that close it
            break
        if enc.shift_base <= token < enc.velocity_base:
            if now + token - enc.shift_base + 1 > steps:
                break
            now += token - enc.shift_base + 1
        elif enc.on_base <= token < enc.off_base:
            begun.add(token - enc.on_base)
            if now // bar_steps in varied:
                ons.setdefault(now // bar_steps, []).append(len(out))
        elif is_off and token - enc.off_base not in begun:
            continue
        out.append((token, False))
    for at in ons.values():
        for k in pick(len(at)) if pick is not None else range(len(at)):
            out[at[k]] = (out[at[k]][0], True)
    return out + [(t, False) for t in enc.shift_tokens(steps - now)]


def after_steps(encoding, tokens: Sequence[int], steps: int) -> list[int]:
    """Event ``tokens`` from grid step ``steps`` on (a shift across it keeps its part after it)."""
    enc, now = encoding, 0
    for index, token in enumerate(tokens):
        if now >= steps:
            return list(tokens[index:])
        if enc.shift_base <= token < enc.velocity_base:
            now += token - enc.shift_base + 1
            if now > steps:
                return enc.shift_tokens(now - steps) + list(tokens[index + 1 :])
    return []
