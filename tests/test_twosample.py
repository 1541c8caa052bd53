"""The classifier two-sample test and its AUCs, on samples whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from rtgen.evaluate.twosample import auc, balanced, cv_accuracy, fit_logistic, predict, standardise, two_sample


def test_two_samples_from_one_distribution_are_not_told_apart():
    rng = np.random.default_rng(1)
    accuracies = [
        two_sample(rng.normal(size=(60, 6)), rng.normal(size=(60, 6)), list("abcdef"), seed)["accuracy"]
        for seed in range(5)
    ]
    assert 0.35 <= float(np.mean(accuracies)) <= 0.62


def test_clearly_different_samples_are_told_apart_and_the_feature_that_differs_is_named():
    rng = np.random.default_rng(2)
    generated, real = rng.normal(size=(40, 5)), rng.normal(size=(55, 5))
    generated[:, 3] += 4.0
    result = two_sample(generated, real, list("abcde"), seed=0)
    assert result["accuracy"] >= 0.95
    assert result["pieces_per_class"] == 40, "the larger sample is cut to the smaller's size"
    assert result["top"][0] == "d" and result["auc"]["d"] > 0.95


def test_auc_on_known_inputs():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert auc(np.array([2.0, 2.0]), np.array([2.0, 2.0])) == 0.5, "ties count half"
    # U by hand over 3 x 2 pairs: 5 > 1, 5 > 4, 2 > 1, 4 > 1, and 4 = 4 counts half
    assert auc(np.array([5.0, 2.0, 4.0]), np.array([1.0, 4.0])) == pytest.approx(4.5 / 6)


def test_the_logistic_regression_separates_separable_data_with_finite_weights():
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    y = np.array([0, 0, 1, 1])
    weights = fit_logistic(x, y)
    assert np.isfinite(weights).all() and weights[0] > 0
    assert predict(weights, x).tolist() == [False, False, True, True]


def test_features_are_standardised_on_the_training_fold_and_constants_stay_put():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaled, test = standardise(train, np.array([[2.0, 5.0]]))
    assert scaled[:, 0].tolist() == [-1.0, 1.0] and scaled[:, 1].tolist() == [0.0, 0.0]
    assert test.tolist() == [[0.0, 0.0]]


def test_cross_validation_scores_every_piece_once():
    x = np.vstack([np.zeros((7, 1)) - 1, np.zeros((7, 1)) + 1])
    y = np.array([0] * 7 + [1] * 7)
    assert cv_accuracy(x, y, folds=5) == 1.0


def test_balanced_draws_are_seeded():
    a, b = np.arange(10.0)[:, None], np.arange(4.0)[:, None]
    first, second = balanced(a, b, 3), balanced(a, b, 3)
    assert len(first[0]) == len(first[1]) == 4 and (first[0] == second[0]).all()
