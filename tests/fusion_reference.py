"""The fusion methods written the slow, obvious way in log space: what ``fuse_probs`` is checked against."""

from __future__ import annotations

import torch
from torch import Tensor

from rtgen.engine.fusion import fuse_product, weight_vector


def reference_fuse(logits: Tensor, weights: Tensor, method: str, temperature: float = 1.0) -> Tensor:
    """Fused log-probabilities [V]; ``weights`` [K] raw; for ``conditional`` the logits are the one model's."""
    if method == "conditional":
        return torch.log_softmax(logits.reshape(-1) / temperature, dim=0)
    normalised = weight_vector(weights)
    if method == "mixture":
        tempered = torch.log_softmax(logits / temperature, dim=1)
        return torch.logsumexp(tempered + normalised.log().unsqueeze(1), dim=0)
    return fuse_product(logits, normalised, temperature)
