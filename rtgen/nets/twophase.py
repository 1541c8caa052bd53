"""The fusion paper's two-phase model: one small RNN per genre, fused by an LSTM that the genre weights steer.

Phase 1, one ``GenreRNN`` per genre, each trained on its own corpus: Dense
128 ReLU over the one-hot token -> RNN 256 tanh -> Dense 128 ReLU -> softmax
over the vocabulary. A Dense layer on a one-hot vector is one column of its
weights plus its bias, so it is an embedding row (which absorbs the bias).

Phase 2, the fusion LSTM (``TwoPhaseLM``), in one of two named weightings
(``NetConfig.weighting``):

* ``output``, the paper's: Dense 256 ReLU over the token's one-hot
  concatenated with every genre's phase-1 next-token distribution ``p_g`` [V]
  -> LSTM 512 -> Dense 256 ReLU -> one softmax per genre; the composer's
  weights ``w_g`` (normalised to sum 1) multiply these phase-2 outputs, and
  their sum is the next-token distribution: ``sum_g w_g q_g``.
* ``input``, rtgen's: the same layers with one softmax, the weights
  multiplying the phase-1 distributions at the fusion input, ``w_g * p_g``.
  The network then reads the weights themselves (each weighted block sums to
  V times its weight) and can blend inside the LSTM, not only at its output.

Feeding the distributions rather than sampled phase-1 melodies keeps the
model one deterministic function of the token stream: it steps live and
trains by backpropagation. The distributions are scaled by V, so a uniform
one reads 1 per token: at 1/V the fusion layer's Adam steps moved its output V
times less through them than through the token, and on toy genres it learned
to read the weights far more slowly. How phase 2 is trained so that the
weights steer: ``rtgen.train.twophase``.

Sizes in ``NetConfig`` (family ``two-phase``): ``hidden_sizes`` = (genre RNN,
fusion LSTM), ``dense_sizes`` = (genre Dense, fusion Dense): in the paper each
phase's input and output Dense layers have one width; ``genre_count`` genre
RNNs; ``embedding_dim`` is not used (the input Dense layers take its place).
The state is one ``(h,)`` per genre RNN, then the fusion LSTM's ``(h, c)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rtgen.nets.config import NetConfig, genre_rows

TWO_PHASE_MODEL = "two-phase"  # the installed model folder the engine's ``two-phase`` method plays
State = list[tuple[Tensor, ...]]
MIN_WEIGHT = 1e-12  # a zero genre weight as a log-weight: finite, so its gradient stays defined


class GenreRNN(nn.Module):
    """Phase 1: one genre's RNN, ``forward``/``step`` like ``RecurrentLM`` without genre input.

    ``config`` is the whole two-phase model's; this network reads its first
    hidden and dense sizes.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        width, hidden = config.dense_sizes[0], config.hidden_sizes[0]
        self.embed = nn.Embedding(config.vocab_size, width)
        self.rnn = nn.RNN(width, hidden, nonlinearity="tanh", batch_first=True)
        self.dense = nn.Linear(hidden, width)
        self.head = nn.Linear(width, config.vocab_size)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, tokens: Tensor, state: State | None = None, genre=None) -> tuple[Tensor, State]:
        """tokens [B, T] -> (logits [B, T, V], [(h [B, H],)])."""
        x = self.drop(torch.relu(self.embed(tokens)))
        h0 = None if state is None else state[0][0].unsqueeze(0).contiguous()
        x, h = self.rnn(x, h0)
        return self._head(x), [(h.squeeze(0),)]

    def step(self, tokens: Tensor, state: State, genre=None) -> tuple[Tensor, State]:
        """tokens [B] -> (logits [B, V], next state), at cell level from the same parameters."""
        rnn = self.rnn
        x = torch.relu(self.embed.weight[tokens])
        h = torch.rnn_tanh_cell(x, state[0][0], rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        return self._head(h), [(h,)]

    def _head(self, x: Tensor) -> Tensor:
        return self.head(self.drop(torch.relu(self.dense(self.drop(x)))))


class TwoPhaseLM(nn.Module):
    """The genre RNNs and the fusion LSTM; ``forward``/``step``/``initial_state`` like a conditional ``RecurrentLM``.

    ``genre``: [G] weights (any non-negative scale) for every row, [B, G]
    normalised weights per row, or None (uniform).
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        width, hidden, vocab = config.dense_sizes[1], config.hidden_sizes[1], config.vocab_size
        self.genre_nets = nn.ModuleList(GenreRNN(config) for _ in range(config.genre_count))
        self.embed = nn.Embedding(vocab, width)  # the fusion input Dense's columns for the one-hot token
        self.signals = nn.Linear(config.genre_count * vocab, width)  # its columns for the weighted distributions
        self.lstm = nn.LSTM(width, hidden, batch_first=True)
        self.dense = nn.Linear(hidden, width)
        self.output_weighted = config.weighting == "output"
        self.head = nn.Linear(width, vocab * (config.genre_count if self.output_weighted else 1))
        self.drop = nn.Dropout(config.dropout)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def initial_state(self, batch: int) -> State:
        """Zero state for ``batch`` streams: each genre RNN's h, then the fusion LSTM's h and c."""
        zeros = [torch.zeros(batch, h, device=self.device) for h in self.config.hidden_sizes]
        return [(zeros[0].clone(),) for _ in self.genre_nets] + [(zeros[1], zeros[1].clone())]

    def weights(self, genre: Tensor | Sequence[float] | None, batch: int) -> Tensor:
        """Genre weights as [batch, G]: per-row weights as given, one vector normalised for every row, or uniform."""
        return genre_rows(genre, self.config.genre_count, batch, self.device)

    def forward(self, tokens: Tensor, state: State | None = None, genre=None) -> tuple[Tensor, State]:
        """tokens [B, T] -> (logits [B, T, V], final state)."""
        state = state if state is not None else self.initial_state(tokens.shape[0])
        weights = self.weights(genre, tokens.shape[0])[:, None, :, None]  # [B, 1, G, 1]
        logits, genre_state = self._phase_one(tokens, state, lambda net, s: net(tokens, s))
        x = self.drop(torch.relu(self.embed(tokens) + self.signals(self._signal(logits, weights))))
        h, c = (s.unsqueeze(0).contiguous() for s in state[-1])
        x, (h, c) = self.lstm(x, (h, c))
        return self._head(x, weights), [*genre_state, (h.squeeze(0), c.squeeze(0))]

    @torch.inference_mode()
    def step(self, tokens: Tensor, state: State, genre=None) -> tuple[Tensor, State]:
        """tokens [B] -> (logits [B, V], next state), at cell level from the same parameters."""
        weights = self.weights(genre, tokens.shape[0])[:, :, None]  # [B, G, 1]
        logits, genre_state = self._phase_one(tokens, state, lambda net, s: net.step(tokens, s))
        x = torch.relu(self.embed.weight[tokens] + self.signals(self._signal(logits, weights)))
        lstm = self.lstm
        h, c = torch.lstm_cell(x, state[-1], lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        return self._head(h, weights), [*genre_state, (h, c)]

    def _phase_one(self, tokens: Tensor, state: State, run) -> tuple[Tensor, State]:
        """Every genre RNN's logits stacked on a genre axis before the vocabulary ([..., G, V]), and their states."""
        outputs = [run(net, state[index : index + 1]) for index, net in enumerate(self.genre_nets)]
        return torch.stack([logits for logits, _ in outputs], dim=-2), [
            s for _, net_state in outputs for s in net_state
        ]

    def _signal(self, logits: Tensor, weights: Tensor) -> Tensor:
        """The fusion input's phase-1 blocks: weighted at the input (``input``), or as they are (``output``)."""
        return _weighted(logits, torch.ones_like(weights) if self.output_weighted else weights)

    def _head(self, x: Tensor, weights: Tensor) -> Tensor:
        """Logits [..., V]; ``output`` weighting: log of ``sum_g w_g softmax(head_g)``, weights [..., G, 1]."""
        logits = self.head(self.drop(torch.relu(self.dense(self.drop(x)))))
        if not self.output_weighted:
            return logits
        per_genre = torch.log_softmax(logits.unflatten(-1, (self.config.genre_count, -1)), dim=-1)
        return torch.logsumexp(per_genre + torch.log(weights.clamp_min(MIN_WEIGHT)), dim=-2)


def _weighted(logits: Tensor, weights: Tensor) -> Tensor:
    """Phase-1 logits [..., G, V], weights [..., G, 1] -> the fusion input's blocks ``V * w_g * p_g`` [..., G * V]."""
    return (torch.softmax(logits, dim=-1) * (weights * logits.shape[-1])).flatten(-2)
