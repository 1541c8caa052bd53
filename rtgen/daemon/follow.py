"""Follow the performer: the genre classifier hears each phrase, and the weights can follow its reading.

Every phrase the listener finishes is scored by the genre classifier
(``rtgen.nets.classifier``: trigram models over intervals, rhythm and
texture). The scores become shares (a softmax of the per-event
log-likelihoods, ``SHARPNESS`` sharp), smoothed over phrases (``SMOOTHING``
of the old reading kept), over the loaded genres only. The reading is always
shown (the TUI draws it beside the weights); with the ``follow`` control on,
it becomes the genre weights (on the sliders' scale: the registry's usual weight
range). Runs in the engine thread, once a phrase: a few milliseconds of numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rtgen.controls import CONTROLS
from rtgen.daemon.commands import SetControls
from rtgen.encoding import Note
from rtgen.nets.classifier import ClassifierError, GenreClassifier

SHARPNESS = 4.0  # per-event log-likelihood differences are small; this turns them into clear shares
SMOOTHING = 0.5  # share of the previous reading kept at each phrase
WEIGHT_SCALE = CONTROLS["weights"].usual[1]  # a share of 1 is a slider at its top
MIN_NOTES = 3  # a phrase this short says nothing about a genre


def shares(scores: dict[str, float], genres: Sequence[str]) -> dict[str, float]:
    """A softmax over ``genres`` of the classifier's scores (higher is likelier); shares sum to 1."""
    top = max(scores[g] for g in genres)
    raw = {g: math.exp(SHARPNESS * (scores[g] - top)) for g in genres}
    total = sum(raw.values())
    return {g: value / total for g, value in raw.items()}


def smoothed(previous: dict[str, float], reading: dict[str, float]) -> dict[str, float]:
    if not previous:
        return dict(reading)
    return {g: SMOOTHING * previous.get(g, 0.0) + (1 - SMOOTHING) * share for g, share in reading.items()}


class Follower:
    """The classifier's smoothed reading of the performer; ``submit`` carries it to the weights when following."""

    def __init__(self, classifier: GenreClassifier, genres: Sequence[str], submit: Callable[[object], None]) -> None:
        self.genres = [g for g in genres if g in classifier.genres]
        self.classifier = classifier
        self.submit = submit
        self.reading: dict[str, float] = {}

    def hear(self, notes: Sequence[Note], following: bool) -> None:
        """A finished phrase: update the reading; when ``following``, set the weights to it."""
        if len(notes) < MIN_NOTES or len(self.genres) < 2:
            return
        try:
            scores = self.classifier.scores(notes)
        except ClassifierError:
            return
        self.reading = smoothed(self.reading, shares(scores, self.genres))
        if following:
            weights = tuple((f"weights.{g}", round(WEIGHT_SCALE * share, 2)) for g, share in self.reading.items())
            self.submit(SetControls(weights))
