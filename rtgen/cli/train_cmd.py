"""``rtgen train``: train a genre model (or one conditional model over several genres)."""

from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a genre model from a corpus or a folder of files",
        description="Train a genre model. Settings come from --config (TOML; see models/configs/) and the "
        "flags below override them. Runs unchanged under torchrun --nproc_per_node=N.",
    )
    parser.add_argument("--config", help="TOML file with TrainConfig settings ([corpus], [net] tables)")
    parser.add_argument("--genre", help="model name written into meta.json")
    parser.add_argument("--source", help="music21 corpus name (essenFolksong, ryansMammoth, bach, ...) or a folder")
    parser.add_argument("--parts", choices=["melody", "all"], help="top part only, or every part")
    parser.add_argument("--limit", type=int, help="use only the first N pieces")
    parser.add_argument(
        "--genres",
        help="conditional model: NAME=SOURCE[:melody|all[:LIMIT]],... e.g. folk=essenFolksong,chorale=bach:all",
    )
    parser.add_argument(
        "--encoding",
        choices=["event", "timestep", "chord"],
        help="event (default), timestep (one token per sixteenth), chord (one per onset, vocabulary from the corpus)",
    )
    parser.add_argument("--arch", help="a seed paper's network: " + ", ".join(_architectures()))
    parser.add_argument("--hidden", help="hidden sizes per layer, e.g. 256,512,256")
    parser.add_argument("--embedding", type=int, help="embedding width")
    parser.add_argument("--cell", choices=["lstm", "gru"])
    parser.add_argument("--layer-norm", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--dropout", type=float, help="dropout between layers and before the head")
    parser.add_argument("--input-dropout", type=float, help="dropout on the embedding (default: --dropout)")
    parser.add_argument("--seq-len", type=int, help="tokens per training window")
    parser.add_argument("--batch-size", type=int, help="windows per batch (per rank)")
    parser.add_argument("--lr", type=float, help="initial Adam learning rate")
    parser.add_argument("--epochs", type=int, help="at most this many epochs")
    parser.add_argument("--steps-per-epoch", type=int, help="batches between validations")
    parser.add_argument("--patience", type=int, help="epochs without improvement before stopping")
    parser.add_argument("--max-minutes", type=float, help="wall-clock budget in minutes")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads per rank (0: cores / ranks)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--out", help="checkpoint folder")
    parser.add_argument("--data", help="train on a prepared token file (from --prepare) instead of the corpora")
    parser.add_argument("--prepare", metavar="FILE", help="only write the run's token streams to FILE (.npz) and exit")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def _architectures() -> list[str]:
    from rtgen.nets.architectures import ARCHITECTURES

    return list(ARCHITECTURES)


# Config key (``net.``/``corpus.`` for nested fields) -> the flag that sets it, as argparse stores it.
FLAGS = {
    "genre": "genre",
    "arch": "arch",
    "genres": "genres",
    "encoding": "encoding",
    "seq_len": "seq_len",
    "batch_size": "batch_size",
    "lr": "lr",
    "epochs": "epochs",
    "steps_per_epoch": "steps_per_epoch",
    "patience_epochs": "patience",
    "max_minutes": "max_minutes",
    "seed": "seed",
    "threads": "threads",
    "device": "device",
    "out_dir": "out",
    "data_file": "data",
    "corpus.source": "source",
    "corpus.parts": "parts",
    "corpus.limit": "limit",
    "net.hidden_sizes": "hidden",
    "net.embedding_dim": "embedding",
    "net.cell": "cell",
    "net.layer_norm": "layer_norm",
    "net.dropout": "dropout",
    "net.input_dropout": "input_dropout",
}
# What a resumed run may change: how much longer and where it runs. Everything else is the run's own.
RESUME_FREE = frozenset({"epochs", "patience_epochs", "max_minutes", "threads", "device", "out_dir"})


def flag_values(args) -> dict:
    """{config key: value} for every flag given (None: not given), parsed."""
    from rtgen.errors import RtgenError
    from rtgen.train.config import parse_genres

    values = {key: getattr(args, dest) for key, dest in FLAGS.items()}
    if args.hidden:
        try:
            values["net.hidden_sizes"] = tuple(int(h) for h in args.hidden.split(","))
        except ValueError:
            raise RtgenError(f"--hidden {args.hidden!r} is not a comma-separated list of sizes") from None
    if args.genres:
        values["genres"] = parse_genres(args.genres)
    return {key: value for key, value in values.items() if value is not None}


def build_config(args):
    """TrainConfig from --config and the overriding flags; with --resume, the run's own saved config."""
    from rtgen.config import from_dict, read_toml
    from rtgen.train.config import TrainConfig, replace, with_architecture

    if args.resume:
        return resumed_config(args)
    table = with_architecture(read_toml(args.config) if args.config else {}, args.arch)
    config = from_dict(TrainConfig, table, args.config or "--arch")
    config = replace(config, **flag_values(args))
    if args.out is None and not args.config:
        config = replace(config, out_dir=f"runs/{config.genre}")
    return config


def resumed_config(args):
    """The interrupted run's config from its meta.json (``train``), with only ``RESUME_FREE`` settings changed.

    A flag or --config setting that contradicts the run (another net size,
    corpus, --limit...) is refused in one line: it could not continue the same
    weights, and silently ignoring it would train something else than asked.
    """
    from pathlib import Path

    from rtgen.config import from_dict, read_toml
    from rtgen.errors import RtgenError
    from rtgen.nets.checkpoint import TRAIN_STATE, WEIGHTS, read_meta
    from rtgen.train.config import TrainConfig, replace, with_architecture

    if not args.out:
        raise RtgenError("--resume needs --out DIR: the folder of the run to continue")
    out = Path(args.out)
    if not (out / TRAIN_STATE).exists():
        raise RtgenError(f"nothing to resume in {out} (no {TRAIN_STATE}: the run finished or never saved an epoch)")
    saved = from_dict(TrainConfig, read_meta(out / WEIGHTS)["train"], f"{out / 'meta.json'} train")
    flags, in_file = flag_values(args), {}
    if args.config:  # the settings the file names, as parsed (so defaults and int/float agree with the saved run)
        table = read_toml(args.config)  # parsed over its architecture's settings, as the run that it started was
        parsed = from_dict(TrainConfig, with_architecture(table, args.arch), args.config)
        in_file = {key: _setting(parsed, key) for key in _flattened(table)}
    asked = {**in_file, **flags}
    for key, value in asked.items():
        was = _setting(saved, key)
        if key not in RESUME_FREE and _plain(value) != _plain(was):
            flag = f"--{FLAGS[key].replace('_', '-')}" if key in flags else f"{args.config}: {key}"
            raise RtgenError(
                f"--resume: {flag} {_plain(value)!r} contradicts the run in {out} ({_plain(was)!r}); "
                "drop it to continue that run, or train a new one in another --out"
            )
    free = {k: v for k, v in asked.items() if k in RESUME_FREE and k != "out_dir"}
    return replace(saved, **free, out_dir=str(out))


def _flattened(table: dict, prefix: str = "") -> dict:
    """A TOML config as {dotted key: value}; the ``genres`` table stays whole, as one setting."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict) and key != "genres":
            flat.update(_flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _setting(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _plain(value):
    """Comparable plain data: dataclasses as dicts, tuples as lists (as meta.json holds them)."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def run(args) -> int:
    from rtgen.cli.outputs import output_file
    from rtgen.train.data import load_data, save_prepared
    from rtgen.train.loop import train

    config = build_config(args)
    if args.prepare:
        output_file(args.prepare, "--prepare")
        encoding, data = load_data(config, progress=not args.no_progress)
        path = save_prepared(args.prepare, encoding, data)
        tokens = sum(d.train.size + d.valid.size for d in data)
        print(f"{path}: {len(data)} genre(s), {tokens:,} tokens, {path.stat().st_size / 1e6:.1f} MB")
        return 0
    out = train(config, resume=args.resume, progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun rank 0 alone reports, as the trainer does
        print(usage_hint(out, config))
    return 0


def usage_hint(out, config) -> str:
    """How to play the new model: the RTGEN_MODELS setting that adds its folder, and the commands naming it."""
    import shlex
    from pathlib import Path

    from rtgen.nets.checkpoint import CONDITIONAL_MODEL
    from rtgen.nets.twophase import TWO_PHASE_MODEL
    from rtgen.paths import shipped_models_dir

    folder = Path(out).resolve()
    env = f"RTGEN_MODELS={shlex.quote(str(folder.parent))}"
    name = folder.name
    if config.genres:
        two_phase = config.net.family == "two-phase"
        model, method = (TWO_PHASE_MODEL, "two-phase") if two_phase else (CONDITIONAL_MODEL, "conditional")
        if name != model:
            return f"to use it, rename {folder} to {folder.parent / model}: the engine's {method} model"
        weights = ",".join(f"{genre}=1" for genre in config.genres)
        return f"use it: {env} python -m rtgen generate --method {method} --genres {weights} -o {name}.mid"
    hides = f" (it replaces the shipped {name})" if (shipped_models_dir() / name).is_dir() else ""
    return (
        f"use it{hides}: {env} python -m rtgen generate --genres {name} -o {name}.mid\n"
        f"   live: {env} python -m rtgen run --genres {name}"
    )
