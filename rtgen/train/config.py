"""A training run's settings, and the epoch rules every trainer shares.

``TrainConfig`` (with its corpora as ``CorpusSpec``) comes from a TOML file, a
named architecture's settings beneath it (``with_architecture``) and flag
overrides (``replace``). The rules are functions of the validation history,
so a resumed run needs no scheduler object: ``lr_at`` lowers the learning rate
by ``lr_factor`` when validation stalls (reduce-on-plateau; the token and
two-phase trainers), ``stop_reason`` ends a run on its wall-clock budget
(``max_minutes``) or after ``patience_epochs`` without improvement (every
trainer). The loops themselves are in ``rtgen.train.loop``, ``twophase`` and
``phrases``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Literal

from rtgen.errors import RtgenError
from rtgen.nets.config import NetConfig
from rtgen.nets.vae import VaeConfig


@dataclass(frozen=True)
class CorpusSpec:
    """Where one genre's pieces come from (see ``rtgen.data.corpus.load_tokens``)."""

    source: str = "essenFolksong"  # music21 corpus name or a folder of files
    parts: Literal["melody", "all"] = "melody"
    limit: int | None = None  # first N pieces only


@dataclass(frozen=True)
class TrainConfig:
    """One training run; loaded from TOML (``[net]`` and ``[corpus]`` tables) plus flag overrides."""

    genre: str = "custom"  # the model's name in meta.json (and `rtgen models`)
    arch: str = ""  # a seed paper's network by name (rtgen.nets.architectures); "": the [net] table alone
    corpus: CorpusSpec = CorpusSpec()
    genres: dict[str, CorpusSpec] = field(default_factory=dict)  # non-empty: ONE conditional model over these
    encoding: str = "event"  # "event", "timestep" or "chord" (its vocabulary counted on the training pieces)
    data_file: str | None = None  # prepared streams (.npz from `rtgen train --prepare`) instead of the corpora
    net: NetConfig = NetConfig()  # vocab_size and genre_count are set from the data
    vae: VaeConfig = VaeConfig()  # arch "vae" only (a [vae] table): the phrase VAE's shape; vocab_size from data
    seq_len: int = 128  # tokens per training window
    batch_size: int = 64  # windows per batch (per rank under torchrun)
    lr: float = 2e-3  # Adam learning rate at the start
    lr_factor: float = 0.5  # multiply the rate by this when validation stalls
    lr_patience_epochs: int = 1  # epochs without improvement before the rate drops
    weight_decay: float = 0.0
    clip_norm: float = 1.0  # gradient norm clip
    epochs: int = 40  # at most this many epochs
    steps_per_epoch: int = 300  # batches between validations
    patience_epochs: int = 4  # stop after this many epochs without a better validation loss
    max_minutes: float = 10.0  # wall-clock budget for the whole run, resumed time included
    valid_max_tokens: int = 200_000  # per-epoch validation scores at most this many tokens per genre
    transpose: bool = True  # training pieces in all 12 keys
    valid_fraction: float = 0.1
    seed: int = 0
    threads: int = 0  # torch CPU threads per rank; 0: the cores divided among ranks
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"...
    out_dir: str = "runs/custom"

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.batch_size < 1 or self.steps_per_epoch < 1 or self.epochs < 1:
            raise ValueError("seq_len >= 2, batch_size, steps_per_epoch and epochs >= 1 are required")
        if self.lr <= 0 or self.max_minutes <= 0:
            raise ValueError("lr and max_minutes must be positive")

    @property
    def corpora(self) -> dict[str, CorpusSpec]:
        """Genre name -> corpus; one entry for a plain model."""
        return dict(self.genres) if self.genres else {self.genre: self.corpus}


def replace(config: TrainConfig, **changes) -> TrainConfig:
    """A copy with top-level or ``net.<field>`` / ``corpus.<field>`` changes (None values ignored)."""
    top, net, corpus = {}, {}, {}
    for key, value in changes.items():
        if value is None:
            continue
        if key.startswith("net."):
            net[key[4:]] = value
        elif key.startswith("corpus."):
            corpus[key[7:]] = value
        else:
            top[key] = value
    try:
        return dataclasses.replace(
            config,
            **top,
            net=dataclasses.replace(config.net, **net),
            corpus=dataclasses.replace(config.corpus, **corpus),
        )
    except (TypeError, ValueError) as error:
        raise RtgenError(f"bad training setting: {error}") from None


def parse_genres(text: str) -> dict[str, CorpusSpec]:
    """``folk=essenFolksong,chorale=bach:all,renaissance=palestrina:all:300`` -> specs, in order."""
    genres: dict[str, CorpusSpec] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, spec = item.partition("=")
        source, _, rest = spec.partition(":")
        parts, _, limit = rest.partition(":")
        if not name or not source or parts not in ("", "melody", "all") or (limit and not limit.isdigit()):
            raise RtgenError(f"--genres item {item!r} is not NAME=SOURCE[:melody|all[:LIMIT]]")
        genres[name] = CorpusSpec(source, parts or "melody", int(limit) if limit else None)
    if len(genres) < 2:
        raise RtgenError("--genres needs at least two NAME=SOURCE items for a conditional model")
    return genres


def with_architecture(table: dict, arch: str | None = None) -> dict:
    """A TOML table with a named architecture's settings beneath it: the table's own keys win.

    ``arch`` (the ``--arch`` flag) wins over the table's ``arch`` key.
    """
    from rtgen.nets.architectures import architecture

    name = arch or table.get("arch") or ""
    if not name:
        return table
    spec = architecture(name)
    merged = {**_listed(spec.train), **table, "arch": name}
    merged["net"] = {**_listed(spec.net), **table.get("net", {})}
    return merged


def _listed(settings: dict) -> dict:
    """Tuples as lists, as TOML gives them."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()}


def net_config_for(config: TrainConfig, encoding) -> NetConfig:
    genre_count = len(config.genres) if config.genres else 0
    return dataclasses.replace(config.net, vocab_size=len(encoding), genre_count=genre_count)


def lr_at(history: list[dict], config: TrainConfig) -> float:
    """Reduce-on-plateau, recomputed from the validation history so resume needs no scheduler object."""
    lr, best, waited = config.lr, math.inf, 0
    for entry in history:
        if entry["valid_ce"] < best:
            best, waited = entry["valid_ce"], 0
        else:
            waited += 1
            if waited > config.lr_patience_epochs - 1:
                lr, waited = lr * config.lr_factor, 0
    return lr


TIME_CAP = "time budget"  # metrics.stopped_by of a run its max_minutes safety cap cut: figures depend on the machine


def stop_reason(history: list[dict], config: TrainConfig, out_of_time: bool) -> str | None:
    """Why training ends after the last epoch of ``history``, or None to go on: every trainer asks here.

    ``out_of_time``: the run's ``max_minutes`` ran out during that epoch ("time
    budget"); otherwise "early stopping" once ``patience_epochs`` epochs passed
    without a lower validation CE. Running out of ``epochs`` ends the loop itself.
    """
    if out_of_time:
        return TIME_CAP
    if history:
        best = min(range(len(history)), key=lambda i: history[i]["valid_ce"])
        if len(history) - 1 - best >= config.patience_epochs:
            return "early stopping"
    return None


def default_threads(world: int) -> int:
    return max(1, (os.cpu_count() or 1) // world)
