"""The shape of a network, stored in every checkpoint so a model rebuilds from its folder alone.

``family`` names the module that builds it (``rtgen.nets.architectures``):
``rnn`` is the stepping recurrent model the shipped genre models use; the
window families (the ESAC paper's bidirectional and attention models) read
the last ``window`` tokens and predict the next, recomputing over that window
at every live step; ``two-phase`` is the fusion paper's genre RNNs and
fusion LSTM (``rtgen.nets.twophase``). Checkpoints written before ``family``
existed read as ``rnn`` with no dense layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from rtgen.controls import normalise
from rtgen.errors import RtgenError

WINDOW_FAMILIES = ("bigru-attention", "bilstm-conv-mha", "bilstm2")
FAMILIES = ("rnn", *WINDOW_FAMILIES, "two-phase")


@dataclass(frozen=True)
class NetConfig:
    """Shape of one network; stored in every checkpoint so it rebuilds from the file alone."""

    vocab_size: int = 338  # tokens in the shared vocabulary (EventEncoding: 338)
    embedding_dim: int = 96  # width of the token embedding
    hidden_sizes: tuple[int, ...] = (384, 384)  # one recurrent layer per entry, e.g. (256, 512, 256)
    cell: Literal["lstm", "gru"] = "lstm"
    dropout: float = 0.2  # between layers and before the head; training only; 0-0.9
    input_dropout: float | None = None  # on the embedding (with the genre vector); None: the same as dropout
    genre_count: int = 0  # > 0: a genre weight vector of this length joins the embedding
    layer_norm: bool = False  # LayerNorm on each recurrent layer's output
    family: str = "rnn"  # one of FAMILIES
    dense_sizes: tuple[int, ...] = ()  # dense layers between the recurrent layers and the head
    dense_activation: Literal["relu", "linear"] = "relu"  # after each dense layer ("linear": none, as lstm-256-512-256)
    window: int = 0  # window families: tokens of context read for each prediction (0 for rnn)
    heads: int = 8  # attention heads (bilstm-conv-mha)
    weighting: Literal["output", "input"] = "output"  # two-phase: where the genre weights act (rtgen.nets.twophase)

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.embedding_dim < 1 or not self.hidden_sizes:
            raise ValueError("vocab_size >= 2, embedding_dim >= 1 and at least one hidden size are required")
        if any(h < 1 for h in (*self.hidden_sizes, *self.dense_sizes)):
            raise ValueError(f"layer sizes must be positive, got {self.hidden_sizes} and {self.dense_sizes}")
        for name in ("dropout", "input_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 0.9:
                raise ValueError(f"{name} {value} outside 0-0.9")
        if self.dense_activation not in ("relu", "linear") or self.weighting not in ("output", "input"):
            raise ValueError(f"dense_activation {self.dense_activation!r} or weighting {self.weighting!r} unknown")
        if self.genre_count < 0:
            raise ValueError(f"genre_count {self.genre_count} is negative")
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} is not one of {', '.join(FAMILIES)}")
        windowed = self.family in WINDOW_FAMILIES
        if windowed and (self.window < 2 or self.genre_count or len(set(self.hidden_sizes)) > 1):
            raise ValueError(f"{self.family} needs window >= 2, layers of one size and no genre conditioning")
        if not windowed and self.window:
            raise ValueError("window is for the window families; an rnn carries its whole past")
        two_phase_sizes = len(self.hidden_sizes) == len(self.dense_sizes) == 2
        if self.family == "two-phase" and (not two_phase_sizes or self.genre_count < 1):
            raise ValueError("two-phase needs hidden and dense sizes (genre RNN, fusion LSTM) and genre_count >= 1")

    @property
    def windowed(self) -> bool:
        return self.family in WINDOW_FAMILIES


def genre_vector(weights: Sequence[float] | Tensor, genre_count: int) -> Tensor:
    """Non-negative genre weights normalised to sum 1 by ``rtgen.controls.normalise`` (all zero is refused)."""
    vector = torch.as_tensor(weights, dtype=torch.float32).flatten()
    if vector.numel() != genre_count:
        raise RtgenError(f"expected {genre_count} genre weights, got {vector.numel()}")
    return torch.tensor(normalise(vector.tolist()), dtype=torch.float32)


def genre_rows(genre: Sequence[float] | Tensor | None, genre_count: int, batch: int, device: torch.device) -> Tensor:
    """Genre weights as [batch, genre_count] on ``device``: [B, G] rows as given, one [G] vector normalised
    for every row (``genre_vector``), or uniform for None."""
    if genre is None:
        return torch.full((batch, genre_count), 1.0 / genre_count, device=device)
    genre = torch.as_tensor(genre, dtype=torch.float32, device=device)
    if genre.dim() == 1:
        genre = genre_vector(genre.cpu(), genre_count).to(device).expand(batch, genre_count)
    return genre
