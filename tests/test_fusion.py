"""Fusion methods: exact formulas, the one-genre identity, weight handling and temperature."""

from __future__ import annotations

import pytest
import torch
from fusion_reference import reference_fuse as fuse
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rtgen.engine.controls import ControlError, Controls
from rtgen.engine.fusion import fuse_probs, weight_vector


def _logits(k: int, v: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(k, v, generator=torch.Generator().manual_seed(seed)) * 3


def test_mixture_is_weighted_average_of_probabilities() -> None:
    logits = _logits(3)
    weights = torch.tensor([10.0, 5.0, 1.0])
    fused = fuse(logits, weights, "mixture", temperature=0.7).exp()
    expected = (weights[:, None] / 16 * torch.softmax(logits / 0.7, dim=1)).sum(0)
    assert torch.allclose(fused, expected, atol=1e-6)


def test_product_is_normalised_weighted_geometric_mean() -> None:
    logits = _logits(2)
    weights = torch.tensor([1.0, 3.0])
    fused = fuse(logits, weights, "product", temperature=1.3).exp()
    lp = torch.log_softmax(logits / 1.3, dim=1)
    unnormalised = (0.25 * lp[0] + 0.75 * lp[1]).exp()
    assert torch.allclose(fused, unnormalised / unnormalised.sum(), atol=1e-6)


def test_product_ignores_zero_weight_genre_that_rules_out_a_token() -> None:
    logits = _logits(2)
    logits[1, 3] = float("-inf")
    fused = fuse(logits, torch.tensor([1.0, 0.0]), "product")
    assert torch.allclose(fused, torch.log_softmax(logits[0], dim=0), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 5),
    chosen=st.integers(0, 4),
    temperature=st.floats(0.1, 3.0),
    scale=st.floats(0.01, 100.0),
    seed=st.integers(0, 1000),
)
def test_one_weighted_genre_gives_its_tempered_softmax_for_every_method(k, chosen, temperature, scale, seed) -> None:
    chosen %= k
    logits = _logits(k, seed=seed)
    weights = torch.zeros(k)
    weights[chosen] = scale
    expected = torch.log_softmax(logits[chosen] / temperature, dim=0)
    for method in ("mixture", "product"):
        assert torch.allclose(fuse(logits, weights, method, temperature), expected, atol=1e-5)
    assert torch.allclose(fuse(logits[chosen : chosen + 1], weights, "conditional", temperature), expected, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(weights=st.lists(st.floats(0.0, 10.0), min_size=3, max_size=3), method=st.sampled_from(["mixture", "product"]))
def test_fused_distribution_is_normalised_and_scale_free(weights, method) -> None:
    assume(sum(weights) > 1e-3)
    raw = torch.tensor(weights)
    logits = _logits(3)
    fused = fuse(logits, raw, method)
    assert torch.isclose(fused.exp().sum(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(fused, fuse(logits, raw * 7.5, method), atol=1e-5)


def test_low_temperature_sharpens_every_method() -> None:
    logits = _logits(3)
    weights = torch.tensor([1.0, 1.0, 1.0])
    for method in ("mixture", "product"):
        cold = fuse(logits, weights, method, 0.3).exp().max()
        hot = fuse(logits, weights, method, 3.0).exp().max()
        assert cold > hot


def test_bad_weights_and_methods_are_refused_with_a_reason() -> None:
    with pytest.raises(ControlError, match="all genre weights are zero"):
        weight_vector(torch.zeros(3))
    with pytest.raises(ControlError, match=">= 0"):
        weight_vector(torch.tensor([1.0, -1.0]))
    with pytest.raises(ControlError, match="method 'blend'"):
        Controls(method="blend")
    with pytest.raises(ControlError, match="temperature"):
        Controls(temperature=0.0)


@settings(max_examples=30, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 10.0), min_size=3, max_size=3),
    method=st.sampled_from(["mixture", "product"]),
    temperature=st.floats(0.2, 3.0),
)
def test_probability_path_equals_the_log_space_formulas(weights, method, temperature) -> None:
    assume(sum(weights) > 1e-3)
    raw = torch.tensor(weights)
    logits = _logits(3)
    expected = fuse(logits, raw, method, temperature).exp()
    assert torch.allclose(fuse_probs(logits, weight_vector(raw), method, temperature), expected, atol=1e-6)
    single = fuse_probs(logits[:1], torch.ones(1), "conditional", temperature)
    assert torch.allclose(single, torch.softmax(logits[0] / temperature, dim=0), atol=1e-6)
