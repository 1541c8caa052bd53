"""Two-sided targets: every statistic of generated music within a band around the real figure.

A statistic passes when generated/real lies within ``RATIO_BAND``; a share
(0-1) whose real figure is under ``SMALL_SHARE`` passes also within
``SMALL_TOLERANCE`` of it (a ratio of two small shares is noise). Too much
repetition misses as surely as too little, which the one-sided targets that
came before ("at least 0.8 x real") let through: a piece that restates its
first section note for note repeats more than any real tune. The in-key share
is banded both ways round: as itself and as its complement, the out-of-key
share, so a key prior that removes a genre's chromaticism (0.2 % of notes
out of key against 7 % in Bach) misses although 0.998/0.93 is inside the band.
Two statistics keep a one-sided target: the inter-onset histogram's total
variation distance (at most ``IOI_TV_MAX``) and the copy rate against the
training data (no higher than real pieces'; copying less is no fault).
"""

from __future__ import annotations

import math

from rtgen.evaluate.statistics import tv_distance

RATIO_BAND = (0.75, 1.33)
SMALL_SHARE = 0.15
SMALL_TOLERANCE = 0.05
IOI_TV_MAX = 0.15
# (statistic, is a share 0-1), each checked against its band; "out_of_key" is 1 - in_key.
BANDED = (
    ("repeats", True),
    ("repeated_share", True),
    ("bar_copies", True),
    ("varied_bars", True),
    ("notes_per_bar", False),
    ("key_halves", True),
    ("key_section", True),
    ("in_key", True),
    ("out_of_key", True),
)


def in_band(generated: float, real: float, share: bool) -> bool | None:
    """Whether ``generated`` is within the band around ``real``; None when either is unknown (NaN)."""
    if math.isnan(generated) or math.isnan(real):
        return None
    if share and real < SMALL_SHARE and abs(generated - real) <= SMALL_TOLERANCE:
        return True
    return real > 0 and RATIO_BAND[0] <= generated / real <= RATIO_BAND[1]


def _value(summary: dict, name: str) -> float:
    if name == "out_of_key":
        return 1.0 - summary["in_key"]
    return float(summary[name])


def verdicts(generated: dict, real: dict) -> dict:
    """{statistic: passed (True/False) or None where unknown} of a setting's summary against the real one."""
    ok = {name: in_band(_value(generated, name), _value(real, name), share) for name, share in BANDED}
    ok["ioi_tv"] = ioi_tv(generated, real) <= IOI_TV_MAX
    copy, real_copy = generated["copy_rate"], real["copy_rate"]
    ok["copy_rate"] = None if math.isnan(copy) or math.isnan(real_copy) else copy <= real_copy
    return ok


def ioi_tv(generated: dict, real: dict) -> float:
    """Total-variation distance between the two summaries' inter-onset histograms."""
    return tv_distance(generated["ioi_counts"], real["ioi_counts"])


def misses(ok: dict) -> list[str]:
    """The statistics that missed their target, in the order checked."""
    return [name for name, passed in ok.items() if passed is False]
