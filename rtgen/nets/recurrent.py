"""Recurrent language models over the shared token vocabulary, and their cheap per-token step.

A network is embedding -> N recurrent layers (LSTM or GRU, one size per layer)
-> dense head over the vocabulary. Two paths share the same parameters:

* ``forward`` runs whole sequences through ``nn.LSTM``/``nn.GRU`` (fast for
  training and for priming with a phrase);
* ``step`` advances one token at cell level (two matmuls and the gate
  nonlinearities). A one-step ``nn.LSTM`` call goes through oneDNN and costs
  about 3x more (measured on the 2-core CPU: 1.7 vs 0.58 ms for 2x256 units,
  5.1 vs 2.0 ms for 2x512; ``rtgen bench train``), and the step is the
  daemon's hot path.

Normalisation: the genre paper uses batch norm between LSTM layers, which
needs batch statistics and so cannot run one token at a time; rtgen uses
LayerNorm on each recurrent layer's output instead (``layer_norm = true``),
which normalises per token and behaves identically in training and stepping.

Genre conditioning (``genre_count > 0``): a genre weight vector is
concatenated to the embedding at every step; one-hot in training, any
non-negative weights (normalised to sum 1) at inference.
"""

from __future__ import annotations

import dataclasses
import mmap
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rtgen.errors import RtgenError
from rtgen.nets.config import NetConfig, genre_rows, genre_vector

HUGE_PAGE = 2 << 20  # bytes in an x86-64 transparent huge page
State = list[tuple[Tensor, ...]]  # per layer: (h, c) for LSTM, (h,) for GRU; each [B, hidden]


class RecurrentLM(nn.Module):
    """Stacked LSTM/GRU language model; ``forward`` for sequences, ``step`` for one token."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        recurrent = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.embed = nn.Embedding(config.vocab_size, config.embedding_dim)
        sizes = [config.embedding_dim + config.genre_count, *config.hidden_sizes]
        self.layers = nn.ModuleList(recurrent(i, h, batch_first=True) for i, h in pairwise(sizes))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for h in config.hidden_sizes) if config.layer_norm else None
        self.drop = nn.Dropout(config.dropout)
        self.input_drop = nn.Dropout(config.dropout if config.input_dropout is None else config.input_dropout)
        self.dense = dense_stack(config.hidden_sizes[-1], config.dense_sizes, config.dropout, config.dense_activation)
        self.head = nn.Linear((config.hidden_sizes[-1], *config.dense_sizes)[-1], config.vocab_size)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def initial_state(self, batch: int) -> State:
        """Zero state for ``batch`` independent streams."""
        parts = 2 if self.config.cell == "lstm" else 1
        return [
            tuple(torch.zeros(batch, h, device=self.device) for _ in range(parts)) for h in self.config.hidden_sizes
        ]

    def _genre_input(self, genre: Tensor | Sequence[float] | None, batch: int) -> Tensor | None:
        """Genre weights as [batch, genre_count]: per-row weights, one shared vector, or uniform."""
        count = self.config.genre_count
        if count == 0:
            if genre is not None:
                raise RtgenError("this model has no genre conditioning; pass genre=None")
            return None
        return genre_rows(genre, count, batch, self.device)

    def forward(self, tokens: Tensor, state: State | None = None, genre: Tensor | None = None) -> tuple[Tensor, State]:
        """tokens [B, T] -> (logits [B, T, V], final state); ``genre`` [B, G] or [G] weights."""
        batch, steps = tokens.shape
        x = self.embed(tokens)
        g = self._genre_input(genre, batch)
        if g is not None:
            x = torch.cat([x, g[:, None, :].expand(batch, steps, g.shape[1])], dim=-1)
        state = state if state is not None else self.initial_state(batch)
        new_state: State = []
        for index, layer in enumerate(self.layers):
            x = self.input_drop(x) if index == 0 else self.drop(x)
            layer_state = tuple(s.unsqueeze(0).contiguous() for s in state[index])
            x, out_state = layer(x, layer_state if len(layer_state) == 2 else layer_state[0])
            out_state = out_state if isinstance(out_state, tuple) else (out_state,)
            new_state.append(tuple(s.squeeze(0) for s in out_state))
            if self.norms is not None:
                x = self.norms[index](x)
        return self.head(self.dense(self.drop(x))), new_state

    @torch.inference_mode()
    def step(self, tokens: Tensor, state: State, genre: Tensor | None = None) -> tuple[Tensor, State]:
        """tokens [B] -> (logits [B, V], next state), at cell level from the same parameters."""
        x = self.embed.weight[tokens]
        g = self._genre_input(genre, x.shape[0])
        if g is not None:
            x = torch.cat([x, g], dim=-1)
        new_state: State = []
        for index, layer in enumerate(self.layers):
            cell = _lstm_cell if self.config.cell == "lstm" else _gru_cell
            layer_state = cell(
                x, state[index], layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0
            )
            new_state.append(layer_state)
            x = layer_state[0]
            if self.norms is not None:
                x = self.norms[index](x)
        return F.linear(self.dense(x), self.head.weight, self.head.bias), new_state


def _lstm_cell(x: Tensor, state: tuple[Tensor, ...], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    """One LSTM step in PyTorch's gate order (input, forget, cell, output)."""
    h, c = state
    gates = torch.addmm(b_ih + b_hh, x, w_ih.t()).addmm_(h, w_hh.t())
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _gru_cell(x: Tensor, state: tuple[Tensor, ...], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    """One GRU step in PyTorch's gate order (reset, update, new)."""
    (h,) = state
    gi = torch.addmm(b_ih, x, w_ih.t())
    gh = torch.addmm(b_hh, h, w_hh.t())
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (n + z * (h - n),)


def dense_stack(width: int, sizes: Sequence[int], dropout: float, activation: str = "relu") -> nn.Sequential:
    """Dense layers of ``sizes`` after an input of ``width``, each with ``activation`` ("relu" or "linear": none)
    and dropout (empty: the identity)."""
    layers: list[nn.Module] = []
    for a, b in pairwise((width, *sizes)):
        layers += [nn.Linear(a, b), nn.ReLU() if activation == "relu" else nn.Identity(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class StackedStepper:
    """Steps K models on one input token as ONE batched computation: logits [K, V] per step.

    Models sharing one ``NetConfig`` have their weights stacked once into
    [K, ...] tensors, under ``torch.inference_mode``, and each step writes into
    preallocated buffers. A step is memory-bound (the 4 shipped models read
    about 13 MB of float32 weights per token, more than the 8 MB L3), so it is
    arranged to read each weight once in as few ops as possible:

    * layer 1's input projection depends only on the token, so a table
      ``embed @ W_ih^T + b_ih (+ b_hh)`` [K, V, G*H] is built once and a step
      reads one row of it instead of the whole W_ih;
    * every layer's inputs live side by side in one state buffer per model,
      ``[genre; h1; (norm1;) h2; (norm2;) ...]``, so a layer's input and its own
      previous h are one contiguous slice and the LSTM gates come from ONE
      ``baddbmm`` against the stacked ``[W_ih; W_hh]``; a layer writes its new h
      straight into that buffer, where the next layer reads it;
    * LSTM gate columns are reordered to (input, forget, output, cell) so the
      nonlinearities are one sigmoid and one tanh.

    Models with different configs, dense layers or a window family (same
    vocabulary) fall back to stepping each model in turn behind the same API. Conditional models see the genre vector
    set by ``set_genre`` (uniform until then).
    """

    def __init__(self, models: Sequence[RecurrentLM]) -> None:
        if not models:
            raise RtgenError("StackedStepper needs at least one model")
        vocab = {m.config.vocab_size for m in models}
        if len(vocab) != 1:
            raise RtgenError(f"models predict over different vocabularies ({sorted(vocab)} tokens); cannot fuse them")
        self.models = list(models)
        self.device = models[0].device
        self.vocab_size = vocab.pop()
        plain = all(m.config.family == "rnn" and not m.config.dense_sizes for m in models)
        self.stacked = plain and len({_shape(m.config) for m in models}) == 1
        self._genre: Tensor | None = None
        with torch.inference_mode():
            self.logits = torch.zeros(len(models), self.vocab_size, device=self.device)
            if self.stacked:
                self._stack_weights()
            self.reset()

    def _stack_weights(self) -> None:
        config, models = self.models[0].config, self.models
        k, g = len(models), config.genre_count
        self._lstm = config.cell == "lstm"
        width = g + sum(config.hidden_sizes) * (2 if config.layer_norm else 1)
        self._z = torch.zeros(k, 1, width, device=self.device)  # [genre; h1; (n1;) h2; (n2;) ...]
        self._genre_slot = self._z[..., :g]
        self._layers = []
        start = g
        for index in range(len(config.hidden_sizes)):
            layer, start = self._stack_layer(index, start)
            self._layers.append(layer)
        self._top = self._z[..., start - config.hidden_sizes[-1] : start]  # the head's input
        self._head_w = _pinned(torch.stack([m.head.weight.detach().t() for m in models]))  # [K, H, V]
        self._head_b = torch.stack([m.head.bias.detach() for m in models])[:, None, :]
        self._out = self.logits.view(k, 1, self.vocab_size)

    def _stack_layer(self, index: int, start: int) -> tuple[dict, int]:
        """Stacked weights and state views of recurrent layer ``index`` whose h starts at ``start`` in the state."""
        config, models, lstm = self.models[0].config, self.models, self._lstm
        size, e = config.hidden_sizes[index], config.embedding_dim
        layers = [m.layers[index] for m in models]
        order = _gate_order(size, lstm)
        w_ih = torch.stack([layer.weight_ih_l0.detach()[order].t() for layer in layers])  # [K, in, G*H]
        w_hh = torch.stack([layer.weight_hh_l0.detach()[order].t() for layer in layers])  # [K, H, G*H]
        b_ih = torch.stack([layer.bias_ih_l0.detach()[order] for layer in layers])[:, None, :]
        b_hh = torch.stack([layer.bias_hh_l0.detach()[order] for layer in layers])[:, None, :]
        bias = b_ih + b_hh if lstm else b_ih
        if index == 0:
            embed = torch.stack([m.embed.weight.detach() for m in models])  # [K, V, E]
            bias = torch.baddbmm(bias, embed, w_ih[:, :e, :])  # the token table [K, V, G*H]
            w_ih = w_ih[:, e:, :]  # the genre rows (none without conditioning)
        x_start = start - w_ih.shape[1]
        k, gates = len(models), w_hh.shape[2]
        layer = {
            "bias": bias,
            "b_hh": b_hh,
            "x": self._z[..., x_start:start],
            "h": self._z[..., start : start + size],
            "xh": self._z[..., x_start : start + size],
            "w": _pinned(torch.cat([w_ih, w_hh], dim=1)) if lstm else None,  # [K, in + H, G*H]
            "w_ih": None if lstm else _pinned(w_ih),
            "w_hh": None if lstm else _pinned(w_hh),
            "c": torch.zeros(k, 1, size, device=self.device),
            "gates": torch.zeros(k, 1, gates, device=self.device),
            "gh": torch.zeros(k, 1, gates, device=self.device),
            "norm": None,
        }
        _gate_views(layer, size, lstm)
        start += size
        if config.layer_norm:
            weight = torch.stack([m.norms[index].weight.detach() for m in models])[:, None, :]
            shift = torch.stack([m.norms[index].bias.detach() for m in models])[:, None, :]
            layer["norm"] = (weight, shift, self._z[..., start : start + size])
            start += size
        return layer, start

    def set_genre(self, weights: Sequence[float] | Tensor) -> None:
        """Genre weights for conditional models (normalised to sum 1); takes effect at the next step."""
        count = self.models[0].config.genre_count
        if count == 0 or any(m.config.genre_count != count for m in self.models):
            raise RtgenError("set_genre needs conditional models with the same genre_count")
        vector = genre_vector(weights, count).to(self.device)
        with torch.inference_mode():
            self._genre = vector
            if self.stacked:
                self._genre_slot.copy_(vector.expand_as(self._genre_slot))

    def reset(self) -> None:
        """Zero every model's state (a fresh start, as after SEP)."""
        with torch.inference_mode():
            self.logits.zero_()
            if self.stacked:
                self._z.zero_()
                for layer in self._layers:
                    layer["c"].zero_()
                count = self.models[0].config.genre_count
                if count:
                    vector = self._genre if self._genre is not None else torch.full((count,), 1.0 / count)
                    self._genre_slot.copy_(vector.expand_as(self._genre_slot))
            else:
                self._states = [m.initial_state(1) for m in self.models]

    def _genre_arg(self, model: RecurrentLM) -> Tensor | None:
        return self._genre if model.config.genre_count else None

    @torch.inference_mode()
    def step(self, token: int) -> Tensor:
        """Feed ``token`` to every model; logits [K, V] for the next token (a reused buffer)."""
        if not 0 <= token < self.vocab_size:
            raise RtgenError(f"token {token} outside the vocabulary of {self.vocab_size}")
        if not self.stacked:
            index = torch.tensor([token], device=self.device)
            for k, model in enumerate(self.models):
                logits, self._states[k] = model.step(index, self._states[k], self._genre_arg(model))
                self.logits[k].copy_(logits[0])
            return self.logits
        row = self._layers[0]["bias"][:, token : token + 1, :]
        for index, layer in enumerate(self._layers):
            bias = row if index == 0 else layer["bias"]
            if self._lstm:
                _lstm_stacked(bias, layer)
            else:
                _gru_stacked(bias, layer)
            norm = layer["norm"]
            if norm is not None:
                torch.addcmul(norm[1], F.layer_norm(layer["h"], layer["h"].shape[-1:]), norm[0], out=norm[2])
        torch.baddbmm(self._head_b, self._top, self._head_w, out=self._out)
        return self.logits

    @torch.inference_mode()
    def prime(self, tokens: Sequence[int]) -> Tensor:
        """Run ``tokens`` through every model (sequence forward) from the current state.

        Returns the logits [K, V] after the last token (the same buffer ``step`` fills).
        """
        if len(tokens) == 0:
            return self.logits
        batch = torch.tensor([list(tokens)], dtype=torch.long, device=self.device)
        for k, model in enumerate(self.models):
            logits, state = model(batch, self._state_of(k), self._genre_arg(model))
            self._set_state(k, state)
            self.logits[k].copy_(logits[0, -1])
        return self.logits

    def _state_of(self, k: int) -> State:
        if not self.stacked:
            return self._states[k]
        if self._lstm:
            return [(layer["h"][k].clone(), layer["c"][k].clone()) for layer in self._layers]
        return [(layer["h"][k].clone(),) for layer in self._layers]

    def _set_state(self, k: int, state: State) -> None:
        if not self.stacked:
            self._states[k] = state
            return
        for layer, layer_state in zip(self._layers, state, strict=True):
            for name, value in zip(("h", "c"), layer_state, strict=False):  # GRU state has h only
                layer[name][k].copy_(value)


def _shape(config: NetConfig) -> NetConfig:
    """The config without its training-only settings: models equal in shape can be stacked."""
    return dataclasses.replace(config, dropout=0.0, input_dropout=None)


def _pinned(weights: Tensor) -> Tensor:
    """A contiguous copy of ``weights``, in transparent huge pages when on a Linux CPU and over 1 MB.

    A step streams every weight from memory; with 4 KB pages that is a TLB miss
    every 4 KB. Huge pages made the 4-model weight products about 15% faster
    (1.05 vs 1.24 ms p50, interleaved in one process on the 2-core CPU).
    """
    size = weights.numel() * weights.element_size()
    if weights.device.type != "cpu" or size < HUGE_PAGE or not hasattr(mmap, "MADV_HUGEPAGE"):
        return weights.contiguous()
    arena = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    arena.madvise(mmap.MADV_HUGEPAGE)
    raw = np.frombuffer(arena, dtype=np.uint8)  # keeps the mapping alive as long as the tensor
    start = -raw.ctypes.data % HUGE_PAGE
    out = torch.from_numpy(raw[start : start + size].view(np.float32).reshape(weights.shape))
    return out.copy_(weights)


def _gate_order(size: int, lstm: bool) -> Tensor:
    """Row order of the stacked gate weights: LSTM (i, f, g, o) -> (i, f, o, g); GRU unchanged."""
    if not lstm:
        return torch.arange(3 * size)
    return torch.cat([torch.arange(2 * size), torch.arange(3 * size, 4 * size), torch.arange(2 * size, 3 * size)])


def _gate_views(layer: dict, size: int, lstm: bool) -> None:
    """Views of the gates buffer a step reuses (slicing costs Python time on every step otherwise)."""
    gates, gh = layer["gates"], layer["gh"]
    if lstm:
        for name, (a, b) in {"i": (0, 1), "f": (1, 2), "o": (2, 3), "g": (3, 4), "ifo": (0, 3)}.items():
            layer[name] = gates[..., a * size : b * size]
    else:
        layer["rz"], layer["z"], layer["r"], layer["n"] = (
            gates[..., : 2 * size],
            gates[..., size : 2 * size],
            gates[..., :size],
            gates[..., 2 * size :],
        )
        layer["h_rz"], layer["h_n"] = gh[..., : 2 * size], gh[..., 2 * size :]


def _lstm_stacked(bias: Tensor, layer: dict) -> None:
    """In-place LSTM step for K stacked models: gates from [x; h] in one product, new h written in place."""
    torch.baddbmm(bias, layer["xh"], layer["w"], out=layer["gates"])
    layer["ifo"].sigmoid_()
    g, c = layer["g"].tanh_(), layer["c"]
    c.mul_(layer["f"]).addcmul_(layer["i"], g)
    torch.tanh(c, out=g)
    torch.mul(layer["o"], g, out=layer["h"])


def _gru_stacked(bias: Tensor, layer: dict) -> None:
    """In-place GRU step for K stacked models: the new h written in place."""
    h, n = layer["h"], layer["n"]
    torch.baddbmm(bias, layer["x"], layer["w_ih"], out=layer["gates"])
    torch.baddbmm(layer["b_hh"], h, layer["w_hh"], out=layer["gh"])
    layer["rz"].add_(layer["h_rz"]).sigmoid_()
    n.addcmul_(layer["r"], layer["h_n"]).tanh_()
    h.sub_(n).mul_(layer["z"]).add_(n)
