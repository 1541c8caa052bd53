"""``rtgen eval music``'s text: per length, the two-sample test's table and the statistics' bands."""

from __future__ import annotations

COLUMNS = (  # (column, statistic)
    ("repeats", "repeats"),
    ("rep.share", "repeated_share"),
    ("bar copies", "bar_copies"),
    ("varied", "varied_bars"),
    ("notes/bar", "notes_per_bar"),
    ("key halves", "key_halves"),
    ("key 1-4/5-8", "key_section"),
    ("in key", "in_key"),
    ("copy", "copy_rate"),
)
NAME_WIDTH = 28


def format_report(report: dict) -> str:
    """The real pieces, then per length: accuracy and what gives each setting away, then every statistic."""
    lengths = list(next(iter(report["settings"].values()))["bars"]) if report["settings"] else []
    out = [real_lines(report["real"])]
    for bars in lengths:
        out += ["", classifier_table(report, bars), "", band_table(report, bars)]
    return "\n".join(out)


def real_lines(real: dict) -> str:
    rows = ["real validation pieces (measured / in the split; with repeat marks expanded; unexpandable):"]
    for genre, r in real.items():
        rows.append(
            f"  {genre:<12} {r['measured']}/{r['validation_pieces']}; expanded {r['repeats_expanded']}; "
            f"unexpandable {r['repeats_unexpandable']}"
        )
    matches = ", ".join(f"{g} {_num(r['prime_key_matches'])}" for g, r in real.items())
    rows.append(f"two-bar primes whose detected key has their opening's key signature: {matches}")
    return "\n".join(rows)


def classifier_table(report: dict, bars: str) -> str:
    """Accuracy telling generated from real (0.5: indistinguishable), and the features furthest from AUC 0.5."""
    rows = [
        f"{bars} bars: classifier two-sample accuracy (0.5 = indistinguishable), against real as played / notated",
        f"{'setting':<{NAME_WIDTH}} {'played':>7} {'notated':>7} {'n':>4}  gives it away (AUC generated > real)",
    ]
    for name, setting in report["settings"].items():
        played, notated = (setting["bars"][bars][side]["two_sample"] for side in ("expanded", "notated"))
        away = ", ".join(f"{f} {_num(played['auc'][f])}" for f in played["top"])
        rows.append(
            f"{name:<{NAME_WIDTH}} {_num(played['accuracy']):>7} {_num(notated['accuracy']):>7} "
            f"{played['pieces_per_class']:>4}  {away}"
        )
    return "\n".join(rows)


def band_table(report: dict, bars: str) -> str:
    """generated/real per statistic against real as played, ! outside its band; IOI TV; restated tokens."""
    header = f"{'setting':<{NAME_WIDTH}} " + " ".join(f"{label:>12}" for label, _ in COLUMNS)
    rows = [
        f"{bars} bars: generated/real (real as played); ! = outside its band (out of key: ! after in key)",
        header + f" {'IOI TV':>7} {'restated':>8}",
    ]
    for name, setting in report["settings"].items():
        at = setting["bars"][bars]
        generated, side = at["generated"], at["expanded"]
        cells = [f"{name:<{NAME_WIDTH}}"]
        for _, key in COLUMNS:
            mark = "!" if side["ok"][key] is False or (key == "in_key" and side["ok"]["out_of_key"] is False) else ""
            cells.append(f"{_num(generated[key])}/{_num(side['real'][key])}{mark}".rjust(12))
        cells.append(f"{_num(side['ioi_tv'])}{'!' if side['ok']['ioi_tv'] is False else ' '}".rjust(7))
        cells.append(f"{_num(generated['restated'])}".rjust(8))
        rows.append(" ".join(cells))
    return "\n".join(rows)


def _num(value) -> str:
    return "-" if value is None else f"{value:.2f}"
