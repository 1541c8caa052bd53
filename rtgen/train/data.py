"""Training data for the language models: token streams, random windows, scored validation.

Pieces are joined into one stream per genre, each piece preceded by SEP and
the stream closed by SEP (``SEP p1 SEP p2 ... SEP``), so a model learns where
pieces begin and end. Training draws random windows of ``seq_len + 1`` tokens
(the papers' sliding windows, sampled rather than enumerated); validation runs
the whole stream in ``rows`` contiguous lanes with state carried across
chunks, so nearly every token is scored with its full context.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from rtgen.errors import RtgenError

if TYPE_CHECKING:
    from rtgen.train.config import TrainConfig


@dataclass(frozen=True)
class GenreData:
    """One genre's streams (int64 tokens) and a summary of where they came from, for meta.json."""

    name: str
    train: np.ndarray = field(repr=False)  # SEP p1 SEP p2 ... SEP
    valid: np.ndarray = field(repr=False)
    summary: dict = field(default_factory=dict)


def join_pieces(pieces: Sequence[np.ndarray], sep_id: int) -> np.ndarray:
    """``SEP p1 SEP p2 ... pn SEP`` as one int64 array."""
    parts: list[np.ndarray] = []
    sep = np.array([sep_id], dtype=np.int64)
    for piece in pieces:
        parts.append(sep)
        parts.append(np.asarray(piece, dtype=np.int64))
    parts.append(sep)
    return np.concatenate(parts)


def names_hash(names: Sequence[str]) -> str:
    """A short stable digest of the piece names on one side of the split."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def genre_data(name: str, corpus, sep_id: int, source: dict) -> GenreData:
    """Streams and summary from a ``rtgen.data.corpus.TokenCorpus``; ``source`` is the corpus spec as a dict."""
    train, valid = join_pieces(corpus.train, sep_id), join_pieces(corpus.valid, sep_id)
    stats = corpus.stats
    summary = {
        **source,
        "pieces": stats.pieces,
        "notes": stats.notes,
        "train_pieces": stats.pieces - len(corpus.valid),
        "train_sequences": len(corpus.train),  # training pieces with their transposed copies
        "valid_pieces": len(corpus.valid),
        "train_tokens": int(train.size),
        "valid_tokens": int(valid.size),
        "skipped": len(stats.skipped),
        "train_names_hash": names_hash(corpus.train_names),
        "valid_names_hash": names_hash(corpus.valid_names),
    }
    return GenreData(name, train, valid, summary)


def split_pieces(stream: np.ndarray, sep_id: int) -> list[np.ndarray]:
    """The pieces of a ``SEP p1 SEP p2 ... SEP`` stream, empty ones dropped."""
    cuts = np.flatnonzero(stream == sep_id)
    return [stream[a + 1 : b] for a, b in pairwise(cuts) if b > a + 1]


def save_prepared(path: str | Path, encoding, data: Sequence[GenreData]) -> Path:
    """Write streams and summaries to one .npz (no pickles) for training elsewhere without music21."""
    path = Path(path)
    header = {"encoding": encoding.to_json(), "genres": [{"name": d.name, "summary": d.summary} for d in data]}
    arrays = {"header": np.array(json.dumps(header))}
    for i, d in enumerate(data):
        arrays[f"train_{i}"] = d.train.astype(np.int16)
        arrays[f"valid_{i}"] = d.valid.astype(np.int16)
    np.savez_compressed(path, **arrays)
    return path


def load_prepared(path: str | Path, genres: Sequence[str]):
    """(encoding, [GenreData]) for ``genres``, in that order, from ``save_prepared``'s file (which may hold more)."""
    from rtgen.data.vocabulary import encoding_from_json

    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            index = {g["name"]: i for i, g in enumerate(header["genres"])}
            missing = [name for name in genres if name not in index]
            if missing:
                raise RtgenError(f"{path}: prepared for genres {list(index)}, not {', '.join(missing)}")
            data = []
            for name in genres:
                i = index[name]
                train, valid = archive[f"train_{i}"].astype(np.int64), archive[f"valid_{i}"].astype(np.int64)
                data.append(GenreData(name, train, valid, header["genres"][i]["summary"]))
    except (OSError, KeyError, ValueError) as error:
        raise RtgenError(f"{path}: not a prepared token file ({error})") from None
    return encoding_from_json(header["encoding"]), data


class WindowSampler:
    """Random windows of ``seq_len + 1`` tokens, balanced over genres, from this rank's shard.

    With ``world`` ranks each rank draws only from its own contiguous 1/world
    of every stream, so ranks see different data.
    """

    def __init__(self, streams: Sequence[np.ndarray], seq_len: int, batch_size: int, seed: int, rank=0, world=1):
        self.seq_len, self.batch_size = seq_len, batch_size
        self.shards = []
        for stream in streams:
            length = len(stream) // world
            shard = stream[rank * length : (rank + 1) * length] if world > 1 else stream
            if len(shard) < seq_len + 2:
                shard = stream  # tiny data: every rank uses all of it rather than fail
            if len(shard) < seq_len + 2:
                raise RtgenError(f"a stream of {len(shard)} tokens is shorter than seq_len + 2 = {seq_len + 2}")
            self.shards.append(torch.from_numpy(np.ascontiguousarray(shard, dtype=np.int64)))
        self.generator = torch.Generator().manual_seed(seed * 1009 + rank)
        self.offsets = torch.arange(seq_len + 1)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs [B, T], targets [B, T], genre index [B]); genres alternate so each batch is balanced."""
        count = len(self.shards)
        genres = torch.arange(self.batch_size) % count
        genres = genres[torch.randperm(self.batch_size, generator=self.generator)]
        rows = torch.empty(self.batch_size, self.seq_len + 1, dtype=torch.long)
        for g, shard in enumerate(self.shards):
            mask = genres == g
            n = int(mask.sum())
            if n == 0:
                continue
            starts = torch.randint(0, len(shard) - self.seq_len - 1, (n, 1), generator=self.generator)
            rows[mask] = shard[starts + self.offsets]
        return rows[:, :-1], rows[:, 1:], genres

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


@dataclass
class StreamScore:
    """Per-token results of scoring a stream: negative log-likelihood (nats), targets, argmax predictions."""

    nll: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray

    @property
    def cross_entropy(self) -> float:
        return float(self.nll.mean()) if self.nll.size else float("nan")


@torch.no_grad()
def score_stream(
    model, stream: np.ndarray, genre=None, rows: int = 16, chunk: int = 256, max_tokens: int | None = None
) -> StreamScore:
    """Score every next-token prediction in ``stream`` (all but the first token of each lane).

    ``genre`` (weights, [G]) is passed to conditional models. ``max_tokens``
    keeps only the stream's head (for fast per-epoch validation). A window
    model scores every token after a full window of its own length.
    """
    if model.config.windowed:
        return score_windows(model, stream, model.window, genre, max_tokens)
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    data = np.asarray(stream if max_tokens is None else stream[:max_tokens], dtype=np.int64)
    rows = max(1, min(rows, len(data) // max(chunk, 2)))
    lane = len(data) // rows
    lanes = torch.from_numpy(data[: lane * rows].reshape(rows, lane)).to(device)
    genre = None if genre is None else torch.as_tensor(genre, dtype=torch.float32)
    state, nll, targets, predictions = None, [], [], []
    for begin in range(0, lane - 1, chunk):
        x = lanes[:, begin : min(begin + chunk, lane - 1)]
        y = lanes[:, begin + 1 : begin + 1 + x.shape[1]]
        logits, state = model(x, state, genre)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        nll.append(loss.cpu())
        targets.append(y.reshape(-1).cpu())
        predictions.append(logits.argmax(-1).reshape(-1).cpu())
    model.train(was_training)
    if not nll:
        empty = np.zeros(0)
        return StreamScore(empty, empty.astype(np.int64), empty.astype(np.int64))
    return StreamScore(torch.cat(nll).numpy(), torch.cat(targets).numpy(), torch.cat(predictions).numpy())


@torch.no_grad()
def score_windows(
    model, stream: np.ndarray, context: int, genre=None, max_tokens: int | None = None, batch: int = 256
) -> StreamScore:
    """Score each token of ``stream`` from exactly the ``context`` tokens before it, from a fresh state.

    The papers' evaluation (a fixed input window per prediction), for any
    model: an RNN starts from zero state at every window, so its accuracy is
    that of a network which only ever sees ``context`` tokens. The first
    ``context`` tokens are not scored.
    """
    data = np.asarray(stream if max_tokens is None else stream[:max_tokens], dtype=np.int64)
    nll, predictions = [], []
    for _, targets, last in window_logits(model, data, context, genre, batch):
        nll.append(F.cross_entropy(last, targets, reduction="none").cpu())
        predictions.append(last.argmax(-1).cpu())
    return StreamScore(torch.cat(nll).numpy(), data[context:], torch.cat(predictions).numpy())


@torch.no_grad()
def window_logits(model, data: np.ndarray, context: int, genre=None, batch: int = 256):
    """Yield (first position, targets [n], logits [n, V]) for each token of ``data`` after its first ``context``,
    each from exactly the ``context`` tokens before it and a fresh state, ``batch`` windows at a time."""
    if len(data) <= context:
        raise RtgenError(f"a stream of {len(data)} tokens has none to score after a context of {context}")
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    windows = np.lib.stride_tricks.sliding_window_view(data, context + 1)
    genre = None if genre is None else torch.as_tensor(genre, dtype=torch.float32)
    try:
        for begin in range(0, len(windows), batch):
            rows = torch.from_numpy(np.ascontiguousarray(windows[begin : begin + batch])).to(device)
            logits, _ = model(rows[:, :-1], None, genre)
            yield context + begin, rows[:, -1], logits[:, -1]
    finally:
        model.train(was_training)


def run_encoding(config: TrainConfig, progress: bool = True):
    """The encoding a run of ``config`` trains with: a chord one counted on the training pieces of its corpora."""
    from rtgen.data.corpus import load_notes
    from rtgen.data.vocabulary import fit_vocabulary, make_encoding

    encoding = make_encoding(config.encoding)
    if encoding.fitted:
        return encoding
    notes = [load_notes(s.source, parts=s.parts, limit=s.limit, progress=progress) for s in config.corpora.values()]
    split = {"transpose": config.transpose, "valid_fraction": config.valid_fraction, "seed": config.seed}
    return fit_vocabulary(encoding, notes, **split)


def load_data(config: TrainConfig, progress: bool = True):
    """(encoding, [GenreData]) for every corpus of the run, via the shared corpus cache or ``data_file``.

    A chord encoding gets one vocabulary, counted on the training pieces of every corpus of the run.
    """
    from rtgen.data.vocabulary import make_encoding
    from rtgen.encoding import check_same_vocabulary

    if config.data_file:
        encoding = make_encoding(config.encoding)
        found, data = load_prepared(config.data_file, list(config.corpora))
        if encoding.fitted or found.name != encoding.name:  # a prepared chord file brings its vocabulary
            check_same_vocabulary(encoding.to_json(), found.to_json())
        return found, data
    from rtgen.data.corpus import load_tokens

    encoding = run_encoding(config, progress)
    data = []
    for name, spec in config.corpora.items():
        corpus = load_tokens(
            spec.source,
            encoding,
            parts=spec.parts,
            limit=spec.limit,
            transpose=config.transpose,
            valid_fraction=config.valid_fraction,
            seed=config.seed,
            progress=progress,
        )
        data.append(genre_data(name, corpus, encoding.sep_id, dataclasses.asdict(spec)))
    return encoding, data
