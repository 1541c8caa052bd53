"""The ESAC paper's window models: read the last ``window`` tokens, predict the next.

Bidirectional layers and attention over the window see every token of it at
once, so these models cannot carry a state from token to token as an RNN
does: a live step recomputes the whole window (``rtgen bench step --arch``
gives the cost). Their state is the window itself, [B, <= window] token ids,
so the engine steps them behind the same ``initial_state``/``step`` API as
``RecurrentLM``. Training scores one prediction per window (the token after
it), as the paper trains them; validation scores every token after a full
window (``rtgen.train.data.score_windows``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from rtgen.errors import RtgenError
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import dense_stack


class WindowLM(nn.Module, ABC):
    """Embedding -> ``features`` over the window -> dense layers -> head; subclasses define ``features``."""

    def __init__(self, config: NetConfig, width: int) -> None:
        super().__init__()
        self.config = config
        self.window = config.window
        self.embed = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.drop = nn.Dropout(config.dropout)
        self.dense = dense_stack(width, config.dense_sizes, config.dropout, config.dense_activation)
        self.head = nn.Linear((width, *config.dense_sizes)[-1], config.vocab_size)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """[B, T, E] embedded window -> [B, width] summary for the prediction after it."""

    def initial_state(self, batch: int) -> Tensor:
        """An empty window: [batch, 0] token ids."""
        return torch.zeros(batch, 0, dtype=torch.long, device=self.device)

    def forward(self, tokens: Tensor, state: Tensor | None = None, genre=None) -> tuple[Tensor, Tensor]:
        """tokens [B, T] after the window ``state`` -> (logits [B, 1, V] for the next token, the new window)."""
        if genre is not None:
            raise RtgenError(f"a {self.config.family} model has no genre conditioning; pass genre=None")
        context = tokens if state is None or state.shape[1] == 0 else torch.cat([state, tokens], dim=1)
        context = context[:, -self.window :]
        summary = self.features(self.drop(self.embed(context)))
        return self.head(self.dense(self.drop(summary)))[:, None, :], context

    @torch.inference_mode()
    def step(self, tokens: Tensor, state: Tensor, genre=None) -> tuple[Tensor, Tensor]:
        """tokens [B] -> (logits [B, V], the window with them): the whole window is recomputed."""
        logits, context = self.forward(tokens[:, None], state, genre)
        return logits[:, 0], context


class AdditiveAttention(nn.Module):
    """The ESAC paper's pooling: weights softmax(query_fc(tanh(attention_fc(x) + value_fc(x)))) over time."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.attention_fc = nn.Linear(width, width)
        self.value_fc = nn.Linear(width, width)
        self.query_fc = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        scores = self.query_fc(torch.tanh(self.attention_fc(x) + self.value_fc(x)))  # [B, T, 1]
        return (x * torch.softmax(scores, dim=1)).sum(dim=1)


class BiGRUAttention(WindowLM):
    """ESAC model 1: bidirectional GRU layers -> additive attention pooling -> batch norm -> dense -> head.

    Batch norm uses its running statistics when stepping (eval mode), an affine
    map per feature, so one window at a time gives the training-time answer.
    """

    def __init__(self, config: NetConfig) -> None:
        size, layers = config.hidden_sizes[0], len(config.hidden_sizes)
        super().__init__(config, 2 * size)
        self.rnn = nn.GRU(
            config.embedding_dim, size, num_layers=layers, batch_first=True, bidirectional=True, dropout=config.dropout
        )
        self.attention = AdditiveAttention(2 * size)
        self.norm = nn.BatchNorm1d(2 * size)

    def features(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return self.norm(self.attention(out))


class BiLSTMConvAttention(WindowLM):
    """ESAC model 3: bidirectional LSTM layers -> Conv1D (kernel 3, ReLU) -> multi-head self-attention.

    Layer norm and a residual around the attention; the last position's
    features predict the next token.
    """

    def __init__(self, config: NetConfig) -> None:
        size, layers = config.hidden_sizes[0], len(config.hidden_sizes)
        super().__init__(config, size)
        self.rnn = nn.LSTM(
            config.embedding_dim, size, num_layers=layers, batch_first=True, bidirectional=True, dropout=config.dropout
        )
        self.conv = nn.Conv1d(2 * size, size, kernel_size=3, padding=1)
        self.conv_norm = nn.LayerNorm(size)
        self.attention = nn.MultiheadAttention(size, config.heads, dropout=config.dropout, batch_first=True)
        self.norm = nn.LayerNorm(size)

    def features(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        local = torch.relu(self.conv(out.transpose(1, 2))).transpose(1, 2)
        local = self.conv_norm(self.drop(local))
        attended, _ = self.attention(local, local, local, need_weights=False)
        return self.norm(local + self.drop(attended))[:, -1]


class BiLSTM2(WindowLM):
    """ESAC model 4: stacked bidirectional LSTMs with dropout between them; the last position feeds the head."""

    def __init__(self, config: NetConfig) -> None:
        size, layers = config.hidden_sizes[0], len(config.hidden_sizes)
        super().__init__(config, 2 * size)
        self.rnn = nn.LSTM(
            config.embedding_dim, size, num_layers=layers, batch_first=True, bidirectional=True, dropout=config.dropout
        )

    def features(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return out[:, -1]


WINDOW_MODELS: dict[str, type[WindowLM]] = {
    "bigru-attention": BiGRUAttention,
    "bilstm-conv-mha": BiLSTMConvAttention,
    "bilstm2": BiLSTM2,
}
