"""Where the form's section under way closes, once it is known ahead: what expression slows into.

``rtgen.engine.sections`` decides a close only at the step it happens (the
bar line after an arrival, a restatement's end, the cap). A player shapes the
notes before it (a ritardando over the last bar, the phrase arch's soft end:
``rtgen.live.expression``), so the engine reports the close as soon as the
form has committed to it:

* a sampled section: the bar line after its arrival (``close_at``), or its cap
  once the stream is within the cap's last bar (no arrival can then close it
  sooner); before either, no close is known;
* a restatement: the end of what was queued, and of its second ending (an
  echo, a section's opening stated again halfway, closes nothing);
* a second ending under way: its end.

An arrival taken back (a strong beat struck after it that is no arrival)
withdraws its close; notes already slowed toward it stay as they were played.
Every function here is a few comparisons, read once per note event.
"""

from __future__ import annotations

import math

from rtgen.engine.sections import Sections


def restated_until(form: Sections, now: int, first: int) -> int:
    """Grid step where what ``form`` queued at ``now`` ends, its second ending included (``first``: taken off it)."""
    enc = form.encoding
    steps = sum(
        t - enc.shift_base + 1 for t in (first, *(t for t, _ in form.queue)) if enc.shift_base <= t < enc.velocity_base
    )
    return now + steps + (form.bar_steps if form.ending_pending else 0)


def close_step(form: Sections, now: int, restated: int) -> int | None:
    """Grid step where the section under way at ``now`` closes, or None while the form does not know it yet.

    ``restated``: ``restated_until`` of the form's latest queue.
    """
    if form.ending_until is not None:
        return form.ending_until
    if (form.queue and not form.echoing) or form.ending_pending:
        return restated
    if form.start is None:
        return None
    if form.close_at is not None:
        return min(form.close_at, form.cap_at)
    return form.cap_at if now >= form.cap_at - form.bar_steps else None


def beats_to_close(form: Sections, now: int, restated: int) -> float:
    """Beats from grid step ``now`` to ``close_step``'s close; inf while it is not known."""
    close = close_step(form, now, restated)
    return math.inf if close is None else max(0, close - now) / form.encoding.steps_per_beat
