"""Genre fusion: K genre models' next-token logits and K weights -> one next-token distribution.

Pure functions over tensors; the engine calls ``fuse_probs`` once per step with the
logits of its K warm genre models. Four methods, picked by ``Controls.method``:

* ``mixture``: ``log sum_k w_k softmax(logits_k / T)``. Every genre keeps its
  own choices; a weight is the chance that this genre speaks for the step. A
  token any weighted genre likes stays possible (the fusion paper's reading of
  "genre weights").
* ``product``: ``sum_k w_k log_softmax(logits_k / T)``, renormalised: a
  weighted (log-linear) product of experts. A token survives only if every
  weighted genre finds it plausible, so it stays near the genres' intersection
  and sounds bolder at high temperature.
* ``conditional``: one multi-genre model trained with genre labels receives the
  weight vector as its genre input; its single distribution is used as it is
  (``fuse_probs`` takes the softmax of its one row of logits), one forward per
  step whatever the number of genres.
* ``two-phase``: the fusion paper's model (``rtgen.nets.twophase``): genre
  RNNs whose next-token distributions, multiplied by the weights, feed a
  fusion LSTM; like ``conditional``, its one distribution is used as it is.

Temperature T is applied in one place for every method: each model's logits are
divided by T before its softmax. With one genre (or one weight above zero)
mixture, product and conditional therefore give exactly ``log_softmax(logits / T)``.

Weights are any non-negative numbers; they are normalised here (all zero is
refused: ``Controls`` refuses it first, this is the last line of defence).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rtgen.controls import normalise


def weight_vector(weights: Tensor) -> Tensor:
    """Non-negative weights [K] -> weights summing to 1 (float32), by ``rtgen.engine.controls.normalise``."""
    return torch.tensor(normalise(weights.tolist()), dtype=torch.float32, device=weights.device)


def tempered(logits: Tensor, inverse_temperature: float) -> Tensor:
    """logits / T (``inverse_temperature`` = 1 / T): the one place temperature meets the logits.

    At T = 1 the same tensor comes back, one op fewer on the per-step path.
    """
    return logits if inverse_temperature == 1.0 else logits * inverse_temperature


def fuse_product(logits: Tensor, weights: Tensor, temperature: float) -> Tensor:
    """logits [K, V], normalised weights [K] -> log-probabilities [V] of the weighted product of experts.

    Genres with weight 0 are left out entirely (0 * -inf would be NaN where a
    genre rules a token out).
    """
    keep = weights > 0
    if not bool(keep.all()):
        logits, weights = logits[keep], weights[keep]
    log_probs = torch.log_softmax(tempered(logits, 1.0 / temperature), dim=1)
    combined = (weights.unsqueeze(1) * log_probs).sum(dim=0)
    return torch.log_softmax(combined, dim=0)


def fuse_probs(logits: Tensor, weights: Tensor, method: str, temperature: float) -> Tensor:
    """The fused distribution as probabilities [V]: the engine's per-step path.

    ``weights`` must already be normalised (``weight_vector``). The mixture is one
    matrix-vector product of the tempered softmaxes (about 4x cheaper than a
    log-space logsumexp at this size); probabilities below float32's range
    underflow to 0, which sampling never picks anyway.
    """
    if method == "mixture":
        return torch.mv(torch.softmax(tempered(logits, 1.0 / temperature), dim=1).t(), weights)
    if method == "product":
        return fuse_product(logits, weights, temperature).exp_()
    return torch.softmax(tempered(logits.reshape(-1), 1.0 / temperature), dim=0)
