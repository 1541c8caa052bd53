"""How well follow mode hears a genre: the classifier on held-out phrases of 2 and 4 bars.

Follow mode (``rtgen.daemon.follow``) classifies each phrase the performer
plays, which is far shorter than the whole pieces the classifier's own
accuracy was measured on. Here every validation piece (never the training
split the classifier was fitted on) is cut into consecutive phrases of
``bars`` bars of 4/4, at most ``per_piece`` each, and each is classified
among the installed genres; a phrase of fewer than ``MIN_NOTES`` notes is
skipped, as follow mode skips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from rtgen.daemon.follow import MIN_NOTES
from rtgen.encoding import Note
from rtgen.nets.classifier import GenreClassifier


def phrases(piece: Sequence[Note], bars: int, per_piece: int) -> list[list[Note]]:
    """Consecutive ``bars``-bar phrases of ``piece``, each from beat 0, at most ``per_piece``."""
    length = Fraction(4 * bars)
    cut = []
    for k in range(per_piece):
        start = k * length
        notes = [
            Note(n.start - start, n.pitch, n.duration, n.velocity) for n in piece if start <= n.start < start + length
        ]
        if len(notes) >= MIN_NOTES:
            cut.append(notes)
    return cut


def follow_accuracy(
    classifier: GenreClassifier, valid: dict[str, list], bar_counts: Sequence[int] = (2, 4), per_piece: int = 4
) -> dict:
    """``{bars: {genre: accuracy, "overall": accuracy, "phrases": count}}`` over the validation pieces."""
    report = {}
    for bars in bar_counts:
        by_genre = {
            genre: [p for piece in pieces for p in phrases(piece, bars, per_piece)] for genre, pieces in valid.items()
        }
        row = classifier.accuracy(by_genre)
        row["phrases"] = sum(len(p) for p in by_genre.values())
        report[bars] = row
    return report


def format_report(report: dict) -> str:
    genres = [g for g in next(iter(report.values())) if g not in ("overall", "phrases")]
    lines = [f"{'phrase':<8} {'phrases':>8} " + " ".join(f"{g:>12}" for g in genres) + f" {'overall':>8}"]
    for bars, row in report.items():
        cells = " ".join(f"{row[g]:>12.3f}" for g in genres)
        lines.append(f"{f'{bars} bars':<8} {row['phrases']:>8} {cells} {row['overall']:>8.3f}")
    return "\n".join(lines)
