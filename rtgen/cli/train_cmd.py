"""``rtgen train``: train a genre model (or one conditional model over several genres)."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--encoding", choices=["event", "timestep"])
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


def build_config(args):
    """TrainConfig from --config and the overriding flags."""
    from rtgen.config import load
    from rtgen.errors import RtgenError
    from rtgen.train.config import TrainConfig, parse_genres, replace

    config = load(TrainConfig, args.config) if args.config else TrainConfig()
    hidden = None
    if args.hidden:
        try:
            hidden = tuple(int(h) for h in args.hidden.split(","))
        except ValueError:
            raise RtgenError(f"--hidden {args.hidden!r} is not a comma-separated list of sizes") from None
    config = replace(
        config,
        genre=args.genre,
        genres=parse_genres(args.genres) if args.genres else None,
        encoding=args.encoding,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        patience_epochs=args.patience,
        max_minutes=args.max_minutes,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        out_dir=args.out,
        data_file=args.data,
        **{
            "corpus.source": args.source,
            "corpus.parts": args.parts,
            "corpus.limit": args.limit,
            "net.hidden_sizes": hidden,
            "net.embedding_dim": args.embedding,
            "net.cell": args.cell,
            "net.layer_norm": args.layer_norm,
            "net.dropout": args.dropout,
            "net.input_dropout": args.input_dropout,
        },
    )
    if args.out is None and not args.config and not args.resume:
        config = replace(config, out_dir=f"runs/{config.genre}")
    return config


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
    train(config, resume=args.resume, progress=not args.no_progress)
    return 0
