"""A classifier two-sample test: can a logistic regression tell generated pieces from real ones?

Given per-piece features of two samples (``rtgen.evaluate.features``), the
larger sample is cut to the size of the smaller (a seeded draw: balanced
classes, so chance is 0.5), and an L2-regularised logistic regression,
fitted by Newton's method on features standardised with the training fold's
mean and deviation, is scored by stratified k-fold cross-validation. The
accuracy is the share of held-out pieces classified right: 0.5 means the
samples cannot be told apart by these features, 1.0 that every piece gives
itself away (Lopez-Paz and Oquab, "Revisiting classifier two-sample tests",
2017). Beside it, each feature's AUC (the Mann-Whitney U statistic over the
two samples, ties counted half): the probability that a generated piece's
value exceeds a real one's, so 0.5 is no difference and 0 or 1 a feature
that separates the samples alone. Pure numpy, deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FOLDS = 5
L2 = 1.0  # penalty on the weights of standardised features (the intercept is free)
NEWTON_STEPS = 25
TOP_FEATURES = 3  # features named in the text report, furthest from AUC 0.5 first


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = NEWTON_STEPS) -> np.ndarray:
    """Weights [features + 1] (the last is the intercept) minimising the summed log-loss + l2/2 |w|^2."""
    n, f = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(f + 1, l2)
    penalty[-1] = 0.0
    weights = np.zeros(f + 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + penalty * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(f + 1)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return weights


def predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Class 1 where the fitted probability exceeds a half."""
    return (x @ weights[:-1] + weights[-1]) > 0


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both scaled by the training rows' mean and standard deviation (a constant feature stays 0)."""
    mean, scale = train.mean(0), train.std(0)
    scale[scale == 0] = 1.0
    return (train - mean) / scale, (test - mean) / scale


def cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0) -> float:
    """Stratified k-fold accuracy of the logistic regression (each class dealt round the folds after a shuffle)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(y == label))
        fold[members] = np.arange(len(members)) % folds
    right = 0
    for k in range(folds):
        test = fold == k
        if not test.any() or test.all():
            continue
        train_x, test_x = standardise(x[~test], x[test])
        right += int((predict(fit_logistic(train_x, y[~test]), test_x) == y[test].astype(bool)).sum())
    return right / len(y)


def auc(a: np.ndarray, b: np.ndarray) -> float:
    """P(a value of ``a`` > one of ``b``) + half P(equal): the Mann-Whitney U over len(a) * len(b)."""
    values = np.concatenate([a, b])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # ties: the mean of their ranks
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def balanced(generated: np.ndarray, real: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Both samples cut to the smaller's size (a seeded draw without replacement from the larger)."""
    n = min(len(generated), len(real))
    rng = np.random.default_rng(seed)
    return tuple(rows[np.sort(rng.choice(len(rows), n, replace=False))] for rows in (generated, real))


def two_sample(generated: np.ndarray, real: np.ndarray, names: Sequence[str], seed: int = 0) -> dict:
    """Cross-validated accuracy generated vs real ([pieces, features] each), per-feature AUCs, the pieces used."""
    generated, real = balanced(generated, real, seed)
    if len(generated) < 2:
        return {"accuracy": None, "pieces_per_class": len(generated), "auc": {}, "top": []}
    x = np.vstack([generated, real])
    y = np.concatenate([np.ones(len(generated)), np.zeros(len(real))])
    aucs = {name: auc(generated[:, i], real[:, i]) for i, name in enumerate(names)}
    top = sorted(aucs, key=lambda name: -abs(aucs[name] - 0.5))[:TOP_FEATURES]
    return {
        "accuracy": cv_accuracy(x, y, min(FOLDS, len(generated)), seed),
        "pieces_per_class": len(generated),
        "auc": aucs,
        "top": top,
    }
