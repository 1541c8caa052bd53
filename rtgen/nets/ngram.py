"""Interpolated Kneser-Ney n-gram models: the baseline every genre model has to beat.

Counts live in sorted int64 key arrays (an n-gram of tokens ``t1..tn`` over a
vocabulary of V is the number ``t1*V^(n-1) + ... + tn``), so fitting is a few
``np.unique`` calls and scoring is ``np.searchsorted``: millions of tokens fit
in seconds, with no Python loop over tokens.

The highest order uses raw counts, lower orders use continuation counts (how
many distinct tokens precede an n-gram), each order with its own absolute
discount ``D = n1 / (n1 + 2 n2)``; the unigram level is interpolated with the
uniform distribution so no token has probability zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Table:
    """Counts of one order: n-gram keys and counts; context keys, totals and distinct followers."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_types: np.ndarray
    discount: float

    @classmethod
    def build(cls, keys: np.ndarray, counts: np.ndarray, vocab: int) -> _Table:
        context, first = np.unique(keys // vocab, return_index=True)
        totals = np.add.reduceat(counts, first) if counts.size else counts
        types = np.diff(np.append(first, keys.size))
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        discount = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
        return cls(
            keys, counts, context, totals.astype(np.float64), types.astype(np.float64), min(max(discount, 0.05), 0.95)
        )

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Counts for ``keys`` (0 where unseen)."""
        if self.keys.size == 0:
            return np.zeros(keys.shape)
        at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return np.where(self.keys[at] == keys, self.counts[at], 0).astype(np.float64)

    def dense(self, contexts: np.ndarray, vocab: int) -> np.ndarray:
        """Counts [N, V] of every token after each context: the keys of one context are one sorted run."""
        out = np.zeros((contexts.size, vocab))
        if self.keys.size == 0:
            return out
        low = np.searchsorted(self.keys, contexts * vocab)
        high = np.searchsorted(self.keys, contexts * vocab + vocab)
        lengths = high - low
        rows = np.repeat(np.arange(contexts.size), lengths)
        starts = np.repeat(low - (np.cumsum(lengths) - lengths), lengths)
        at = np.arange(lengths.sum()) + starts
        out[rows, self.keys[at] % vocab] = self.counts[at]
        return out

    def context(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(total count, distinct followers) per context key (0, 0 where unseen)."""
        if self.context_keys.size == 0:
            return np.zeros(contexts.shape), np.zeros(contexts.shape)
        at = np.minimum(np.searchsorted(self.context_keys, contexts), self.context_keys.size - 1)
        seen = self.context_keys[at] == contexts
        return np.where(seen, self.context_totals[at], 0.0), np.where(seen, self.context_types[at], 0.0)


def _ngram_keys(stream: np.ndarray, order: int, vocab: int) -> np.ndarray:
    """Key of the n-gram ending at each position ``order-1 ..`` of ``stream``."""
    keys = np.zeros(len(stream) - order + 1, dtype=np.int64)
    for j in range(order):
        keys = keys * vocab + stream[j : len(stream) - order + 1 + j]
    return keys


class KneserNey:
    """Interpolated Kneser-Ney over orders 1..``max_order``, fitted on token streams."""

    def __init__(self, vocab_size: int, max_order: int = 5, pad_id: int = 1) -> None:
        if vocab_size**max_order >= 2**62:
            raise ValueError(f"order {max_order} over {vocab_size} tokens does not fit 64-bit keys")
        self.vocab, self.max_order, self.pad_id = vocab_size, max_order, pad_id
        self.raw: list[_Table] = []
        self.continuation: list[_Table] = []

    def _padded(self, stream: np.ndarray) -> np.ndarray:
        pad = np.full(self.max_order - 1, self.pad_id, dtype=np.int64)
        return np.concatenate([pad, np.asarray(stream, dtype=np.int64)])

    def fit(self, streams: Sequence[np.ndarray]) -> KneserNey:
        """Count every order on ``streams`` (each padded on the left with ``pad_id``).

        Continuation counts are kept for the orders below the top only (the top
        order interpolates raw counts), so no key is longer than ``max_order``
        tokens and every key fits the 64-bit range the constructor checked.
        """
        padded = [self._padded(s) for s in streams]
        unique = []
        for order in range(1, self.max_order + 1):
            parts = [_ngram_keys(s, order, self.vocab) for s in padded if len(s) >= order]
            keys, counts = np.unique(np.concatenate(parts) if parts else np.zeros(0, np.int64), return_counts=True)
            unique.append((keys, counts))
        for order in range(1, self.max_order + 1):
            self.raw.append(_Table.build(*unique[order - 1], self.vocab))
            if order < self.max_order:
                longer = unique[order][0] % (self.vocab**order)  # drop the first token of each (order+1)-gram
                keys, counts = np.unique(longer, return_counts=True)
                self.continuation.append(_Table.build(keys, counts, self.vocab))
        return self

    def _level(self, table: _Table, contexts: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """Interpolate one order's discounted counts with the next-lower distribution ``lower`` [N, V]."""
        totals, types = table.context(contexts)
        grams = table.dense(contexts, self.vocab)
        seen = totals > 0
        safe = np.where(seen, totals, 1.0)[:, None]
        mixed = np.maximum(grams - table.discount, 0) / safe + (table.discount * types[:, None] / safe) * lower
        return np.where(seen[:, None], mixed, lower)

    def _unigram(self, table: _Table, rows: int) -> np.ndarray:
        counts = table.lookup(np.arange(self.vocab, dtype=np.int64))
        d = table.discount
        p = (np.maximum(counts - d, 0) + d * (counts > 0).sum() / self.vocab) / counts.sum()
        return np.broadcast_to(p, (rows, self.vocab))

    def all_orders(self, history: np.ndarray) -> dict[int, np.ndarray]:
        """{order: P(next | history) [N, V]} for orders 1..max_order; ``history`` [N, max_order-1].

        Orders share the continuation-count levels below their top, so all of
        them cost about twice one order.
        """
        rows, width = history.shape
        contexts = [np.zeros(rows, dtype=np.int64)]  # contexts[k]: key of the last k tokens
        for k in range(1, width + 1):
            contexts.append(contexts[-1] + history[:, width - k] * self.vocab ** (k - 1))
        result = {1: self._unigram(self.raw[0], rows)}
        lower = self._unigram(self.continuation[0], rows) if self.continuation else result[1]
        for order in range(2, self.max_order + 1):
            result[order] = self._level(self.raw[order - 1], contexts[order - 1], lower)
            if order < self.max_order:
                lower = self._level(self.continuation[order - 1], contexts[order - 1], lower)
        return result

    def distributions(self, history: np.ndarray, order: int) -> np.ndarray:
        """P(next token | the last order-1 tokens of each row of ``history`` [N, max_order-1]): [N, V]."""
        return self.all_orders(history)[order]

    def chunks(self, stream: np.ndarray, chunk: int = 2048) -> Iterator[tuple[int, np.ndarray, dict[int, np.ndarray]]]:
        """(first position, targets [n], {order: P(target position | history) [n, V]}) for every token of
        ``stream`` but the first, ``chunk`` positions at a time (position i: ``stream[i + 1]``)."""
        padded = self._padded(stream)
        width = self.max_order - 1
        targets = padded[width + 1 :]
        for begin in range(0, targets.size, chunk):
            end = min(begin + chunk, targets.size)
            rows = np.arange(begin + 1, end + 1)[:, None] + np.arange(width)[None, :]  # the width tokens before each
            yield begin, targets[begin:end], self.all_orders(padded[rows])

    def score(self, stream: np.ndarray, chunk: int = 2048) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{order: (negative log-likelihood in nats, argmax prediction)} for every token of ``stream`` but the first."""
        size = max(len(stream) - 1, 0)
        scores = {o: (np.empty(size), np.empty(size, dtype=np.int64)) for o in range(1, self.max_order + 1)}
        for begin, targets, by_order in self.chunks(stream, chunk):
            end = begin + targets.size
            for order, probs in by_order.items():
                nll, predictions = scores[order]
                nll[begin:end] = -np.log(probs[np.arange(targets.size), targets])
                predictions[begin:end] = probs.argmax(axis=1)
        return scores
