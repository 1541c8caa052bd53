"""The fiddle paper's own measure, as near as rtgen's tokens allow: what sounds, folded into one octave.

The paper feeds and predicts a 13-wide binary vector per sixteenth, the
pitches C4-C5, in the tunes' original keys, and reports Keras's accuracy: the
predicted vector's largest entry against the target's. A melody folded into
that range keeps its pitch class (C5 and C4 both read as C) and loses its
octave, and a held note is the same vector as the step before. So here every
step's target is the sounding pitch class (a hold continues the note before
it) or silence (a rest, a piece boundary): 13 classes. A model's prediction
is its probability mass folded the same way (every pitch token onto its
class, the hold token onto the class sounding before the step, rest onto
silence) and the class with most of it. Validation pieces are in their
original keys; the models and n-grams here learnt from all 12 keys.

This is easier than rtgen's token accuracy: the octave, and whether a note is
struck again or held, no longer count.
"""

from __future__ import annotations

import numpy as np
import torch

SILENCE = 12  # the class of a step where nothing sounds
CLASSES = 13  # 12 pitch classes and silence: the paper's vector is 13 wide


def sounding_classes(stream: np.ndarray, encoding) -> np.ndarray:
    """Per position of a time-step ``stream``: the sounding pitch class 0-11 (a hold continues it) or SILENCE."""
    stream = np.asarray(stream, dtype=np.int64)
    position = np.arange(len(stream))
    last = np.maximum.accumulate(np.where(stream != encoding.hold_id, position, 0))
    sounding = stream[last]
    return np.where(sounding >= encoding.pitch_base, (sounding - encoding.pitch_base) % 12, SILENCE)


def class_matrix(encoding) -> np.ndarray:
    """[V, 13] one-hot: each token's class (pitch tokens their pitch class, every other token silence); the hold
    token's row is zero, its mass going to whatever sounds before the step (``folded_predictions``)."""
    tokens = np.arange(len(encoding))
    classes = np.where(tokens >= encoding.pitch_base, (tokens - encoding.pitch_base) % 12, SILENCE)
    matrix = np.eye(CLASSES)[classes]
    matrix[encoding.hold_id] = 0.0
    return matrix


def folded_predictions(probabilities: np.ndarray, before: np.ndarray, encoding) -> np.ndarray:
    """The class with most of each row's mass: ``probabilities`` [n, V] next-token distributions, ``before`` [n]
    the class sounding at the step before each."""
    folded = probabilities @ class_matrix(encoding)
    folded[np.arange(len(before)), before] += probabilities[:, encoding.hold_id]
    return folded.argmax(axis=1)


def model_scores(model, valid: np.ndarray, context: int, encoding, batch: int = 256):
    """One pass over ``valid[context:]``, each step from exactly its context: (rtgen's ``StreamScore``, the
    paper's accuracy)."""
    from torch.nn import functional as F

    from rtgen.train.data import StreamScore, window_logits

    data = np.asarray(valid, dtype=np.int64)
    sounding = sounding_classes(data, encoding)
    nll, predictions, hits = [], [], []
    for begin, targets, logits in window_logits(model, data, context, batch=batch):
        logits = logits.float()
        nll.append(F.cross_entropy(logits, targets, reduction="none").cpu().numpy())
        predictions.append(logits.argmax(-1).cpu().numpy())
        probabilities = torch.softmax(logits, dim=-1).cpu().numpy()
        end = begin + len(probabilities)
        hits.append(folded_predictions(probabilities, sounding[begin - 1 : end - 1], encoding) == sounding[begin:end])
    score = StreamScore(np.concatenate(nll), data[context:], np.concatenate(predictions))
    return score, float(np.concatenate(hits).mean())


def ngram_accuracy(model, valid: np.ndarray, context: int, encoding) -> dict[str, float]:
    """{order: the paper's accuracy} of a fitted ``KneserNey`` over ``valid[context:]``."""
    sounding = sounding_classes(valid, encoding)
    hits: dict[int, list[np.ndarray]] = {}
    for begin, targets, by_order in model.chunks(valid):
        positions = np.arange(begin + 1, begin + 1 + targets.size)  # chunk row i predicts valid[begin + 1 + i]
        keep = positions >= context
        for order, probabilities in by_order.items():
            predicted = folded_predictions(probabilities[keep], sounding[positions[keep] - 1], encoding)
            hits.setdefault(order, []).append(predicted == sounding[positions[keep]])
    return {str(order): float(np.concatenate(rows).mean()) for order, rows in hits.items()}


def continue_accuracy(valid: np.ndarray, context: int, encoding) -> float:
    """The paper's accuracy of always predicting that what sounds goes on (the measure's always-hold)."""
    sounding = sounding_classes(valid, encoding)
    return float((sounding[context:] == sounding[context - 1 : -1]).mean())
