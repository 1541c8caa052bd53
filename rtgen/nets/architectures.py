"""The seed papers' networks by name, and the one place a ``NetConfig`` becomes a module.

``rtgen train --arch NAME`` (or ``arch = "NAME"`` in a training TOML) starts
from the paper's settings below; the TOML and the flags still override any of
them. Where a setting departs from the paper, the architecture's ``note`` says
which and why, and ``rtgen eval zoo`` prints it beside the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from rtgen.errors import RtgenError
from rtgen.nets.config import NetConfig


@dataclass(frozen=True)
class Architecture:
    name: str
    paper: str  # which seed paper, as DESIGN.md names it
    net: dict = field(default_factory=dict)  # NetConfig fields
    train: dict = field(default_factory=dict)  # TrainConfig fields (window length, batch, learning rate)
    note: str = ""


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            "lstm3x512",
            "genre-specific",
            {"hidden_sizes": (512, 512, 512), "layer_norm": True, "dropout": 0.3, "dense_sizes": (256,)},
            {"seq_len": 100, "batch_size": 64, "lr": 0.001, "encoding": "chord"},
            "LayerNorm on each LSTM output stands in for the paper's batch norm: it steps one token at a time; "
            "the paper's notes-and-chords tokens (rtgen.data.chords), with each onset's length folded in",
        ),
        Architecture(
            "lstm-256-512-256",
            "one-composer",
            {
                "hidden_sizes": (256, 512, 256),
                "dropout": 0.5,
                "input_dropout": 0.0,
                "dense_sizes": (256,),
                "dense_activation": "linear",
            },
            {"seq_len": 75, "batch_size": 256, "lr": 0.001, "encoding": "chord"},
            "the paper's linear dense 256 and no dropout on the input; batch 256, the paper's choice for speed; "
            "the paper's notes-and-chords tokens (rtgen.data.chords), with each onset's length folded in",
        ),
        Architecture(
            "bigru-attention",
            "ESAC, model 1",
            {
                "family": "bigru-attention",
                "cell": "gru",
                "hidden_sizes": (128, 128, 128, 128),
                "dropout": 0.6,
                "dense_sizes": (256, 128),
                "window": 64,
            },
            {"seq_len": 64, "batch_size": 100, "lr": 0.0005, "valid_max_tokens": 20_000},
            "one dropout rate (0.6) everywhere; the paper has 0.5 inside the GRU",
        ),
        Architecture(
            "bilstm-conv-mha",
            "ESAC, model 3",
            {"family": "bilstm-conv-mha", "hidden_sizes": (256, 256), "dropout": 0.5, "window": 64, "heads": 8},
            {"seq_len": 64, "batch_size": 100, "lr": 0.001, "valid_max_tokens": 20_000},
            "2 bidirectional LSTM layers, not the paper's 8, and lr 0.001, not 0.0001: each CPU step recomputes "
            "the window, and 8 layers at 0.0001 learn nothing in a CPU budget",
        ),
        Architecture(
            "bilstm2",
            "ESAC, model 4",
            {"family": "bilstm2", "hidden_sizes": (256, 256), "dropout": 0.3, "window": 64},
            {"seq_len": 64, "batch_size": 100, "lr": 0.001, "valid_max_tokens": 20_000},
        ),
        Architecture(
            "two-phase",
            "fusion",
            {"family": "two-phase", "hidden_sizes": (256, 512), "dense_sizes": (128, 256), "genre_count": 4},
            {"seq_len": 100, "batch_size": 32, "lr": 0.001, "valid_max_tokens": 20_000},
            "phase 2 reads the genre RNNs' next-token distributions, not sampled melodies, so it steps live; "
            "the weights multiply its per-genre outputs (weighting 'output', the paper's) or its phase-1 inputs "
            "('input', rtgen's); batch 32 in both phases (paper: 10 for the LSTM); genre_count is set by --genres; "
            "how the weights learn to steer: rtgen.train.twophase",
        ),
        Architecture(
            "vae",
            "ESAC, model 2",
            {},
            {
                "encoding": "timestep",
                "lr": 0.005,
                "lr_factor": 0.1,
                "batch_size": 128,
                "epochs": 30,
                "patience_epochs": 10,
            },
            "a phrase VAE (rtgen.nets.vae), shaped by the [vae] table: 2-bar time-step phrases as one-hot grids, "
            "fc 512-256, latent 32, beta 1 (the paper gives no sizes); lr 0.005 x0.1 every 10 epochs as the paper; "
            "it answers a call with a variation rather than stepping tokens",
        ),
    )
}


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise RtgenError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def arch_name(meta: dict) -> str:
    """A checkpoint's architecture as people say it: the paper's name, else the family and layer sizes."""
    named = meta.get("train", {}).get("arch")
    if named:
        return named
    net = meta.get("config", {})
    return f"{net.get('family', 'rnn')} {' x '.join(str(h) for h in net.get('hidden_sizes', []))}"


def build_model(config: NetConfig) -> nn.Module:
    """The untrained module for ``config``: ``RecurrentLM``, one of the window models or ``TwoPhaseLM``."""
    if config.family == "two-phase":
        from rtgen.nets.twophase import TwoPhaseLM

        return TwoPhaseLM(config)
    if config.windowed:
        from rtgen.nets.windowed import WINDOW_MODELS

        return WINDOW_MODELS[config.family](config)
    from rtgen.nets.recurrent import RecurrentLM

    return RecurrentLM(config)
