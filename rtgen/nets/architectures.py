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
            {"seq_len": 100, "batch_size": 64, "lr": 0.001},
            "LayerNorm on each LSTM output stands in for the paper's batch norm: it steps one token at a time",
        ),
        Architecture(
            "lstm-256-512-256",
            "one-composer",
            {"hidden_sizes": (256, 512, 256), "dropout": 0.5, "dense_sizes": (256,)},
            {"seq_len": 75, "batch_size": 256, "lr": 0.001},
            "batch 256, the paper's choice for speed; loss.png shows where validation turns (early stopping)",
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
    """The untrained module for ``config``: ``RecurrentLM`` or one of the window models."""
    if config.windowed:
        from rtgen.nets.windowed import WINDOW_MODELS

        return WINDOW_MODELS[config.family](config)
    from rtgen.nets.recurrent import RecurrentLM

    return RecurrentLM(config)
