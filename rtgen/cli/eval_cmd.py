"""``rtgen eval``: validation metrics of installed models beside the n-gram baseline, and of their samples."""

from __future__ import annotations

import json
import math
import sys

from rtgen.cli.progress import note


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate installed models on their validation split against an n-gram baseline",
        description="Cross-entropy, perplexity, accuracy and macro F1 on each model's validation split beside the "
        "best Kneser-Ney n-gram (orders 1-5), and in-scale ratio, pitch-class entropy, range, notes per bar and "
        "copy rate of sampled pieces.",
    )
    parser.add_argument("--genres", help="comma-separated model names (default: every installed model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by model (model/genre)")
    parser.add_argument("--samples", type=int, default=16, help="pieces sampled per model (default 16)")
    parser.add_argument("--max-tokens", type=int, default=200_000, help="validation tokens scored per genre")
    parser.add_argument("--write", action="store_true", help="store the results in each model's meta.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)
    register_fidelity(parser)


def register_fidelity(parser) -> None:
    """``rtgen eval fidelity`` and ``rtgen eval classifier``: fidelity of fused output (rtgen.evaluate.fidelity)."""
    evals = parser.add_subparsers(title="more evaluations")
    fidelity = evals.add_parser(
        "fidelity",
        help="generate pieces per weight setting and report each genre's classified share, per fusion method",
        description="Targets: one genre at full weight -> >= 80 % of pieces classified as it; one genre's weight "
        "rising 0 -> 1 against another in 5 steps -> its share rises (Spearman >= 0.9).",
    )
    fidelity.add_argument("--json", action="store_true", help="print the full report as JSON")
    fidelity.add_argument("--pieces", type=int, default=20, help="pieces per weight setting (default 20)")
    fidelity.add_argument("--bars", type=int, default=16, help="bars per piece (default 16)")
    fidelity.add_argument("--methods", default="mixture,product,conditional,two-phase", help="fusion methods to test")
    fidelity.add_argument("--pairs", default="folk:fiddle,chorale:renaissance", help="sweeps, genre:against,...")
    fidelity.add_argument("--seed", type=int, default=0)
    fidelity.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    fidelity.set_defaults(handler=run_fidelity_cmd)
    classifier = evals.add_parser(
        "classifier",
        help="fit the genre classifier on the corpora's training splits and save models/classifier.npz",
        description="Per-genre trigram models over interval, duration and texture features; prints held-out accuracy.",
    )
    classifier.add_argument("--max-train", type=int, default=1500, help="training pieces per genre (default 1500)")
    classifier.add_argument("--json", action="store_true")
    classifier.set_defaults(handler=run_classifier_cmd)
    follow = evals.add_parser(
        "follow",
        help="follow mode's classifier on held-out validation phrases of 2 and 4 bars",
        description="Cut every validation piece into phrases of 2 and 4 bars and print the share classified as "
        "their own genre, per genre and overall: how well follow mode hears what the performer plays.",
    )
    follow.add_argument("--json", action="store_true")
    follow.add_argument("--per-piece", type=int, default=4, help="phrases taken from each piece (default 4)")
    follow.set_defaults(handler=run_follow_cmd)
    music = evals.add_parser(
        "music",
        help="can generated pieces be told from real ones? Two-sided bands and a classifier, per genre and preset",
        description="Per genre, the 50/50 blends and every preset: PIECES pieces generated at the longest of BARS "
        "bars, each primed with the opening two bars of a validation piece, measured at each length against the "
        "genre's real validation pieces as notated and with repeats expanded: every statistic against its "
        "two-sided band (rtgen.evaluate.bands), and a classifier two-sample test (cross-validated accuracy, "
        "0.5 = indistinguishable, with per-feature AUCs; rtgen.evaluate.twosample).",
    )
    music.add_argument("--json", action="store_true", help="print the full report as JSON")
    music.add_argument("--pieces", type=int, default=32, help="pieces per setting (default 32)")
    music.add_argument("--bars", default="8,16,32", help="lengths measured, comma-separated (default 8,16,32)")
    music.add_argument(
        "--settings",
        help="kinds (genres, blends, presets) or setting names (fiddle, folk+fiddle, fiddle-reel), comma-separated "
        "(default: every kind; with --quick, genres)",
    )
    music.add_argument("--no-presets", action="store_true", help="genres and blends only (--settings genres,blends)")
    music.add_argument("--real-pieces", type=int, default=100, help="validation pieces per genre (default 100)")
    music.add_argument("--quick", action="store_true", help="a smoke run: 6 pieces against 12 real, 8 bars, genres")
    music.add_argument("--seed", type=int, default=0)
    music.add_argument("--controls", help="controls set on every setting, e.g. repeat=0.5,key_prior=0.6")
    music.set_defaults(handler=run_music_cmd)
    zoo = evals.add_parser(
        "zoo",
        help="every trained architecture (models/zoo/, runs/zoo/) and the shipped models of its corpora, side by side",
        description="Per checkpoint: parameters, training tokens/minutes/device, validation CE, accuracy and macro "
        "F1 beside the best n-gram on the same validation head, one model's live step p50/p99, in-scale ratio "
        "and copy rate of samples; the papers' own figures beneath (rtgen.evaluate.zoo).",
    )
    zoo.add_argument("--json", action="store_true", help="print the rows as JSON")
    zoo.add_argument(
        "--models",
        help="comma-separated checkpoint folders or model names (default: models/zoo/* and runs/zoo/*)",
    )
    zoo.add_argument("--no-shipped", action="store_true", help="leave out the shipped fiddle and folk models")
    zoo.add_argument("--max-tokens", type=int, default=20_000, help="validation head scored per row")
    zoo.add_argument("--write", action="store_true", help="store each row's figures in its meta.json")
    zoo.add_argument("--samples", type=int, default=16, help="sampled pieces per row for in-scale and copy rate")
    zoo.set_defaults(handler=run_zoo_cmd)
    fiddle = evals.add_parser(
        "fiddle",
        help="the fiddle paper's table: time-step accuracy at contexts 64/128/256 beside n-grams and always-hold",
        description="Next-step accuracy of the time-step models (default: runs/zoo/fiddle-timestep-64/128/256, else "
        "the shipped ones in models/zoo/), "
        "each token predicted from exactly the model's context, beside the paper's 45 / 47.5 / 43 %, Kneser-Ney "
        "n-grams of orders 1-8 and the always-hold baseline on the same tokens (rtgen.evaluate.fiddle_paper).",
    )
    fiddle.add_argument("--json", action="store_true", help="print the report as JSON")
    fiddle.add_argument("--models", nargs="+", metavar="DIR", help="time-step model folders (default: the zoo's)")
    fiddle.add_argument("--max-tokens", type=int, help="score only the validation stream's head (default: all)")
    fiddle.add_argument("--data", help="a prepared token file (rtgen train --prepare) instead of the corpus")
    fiddle.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    fiddle.set_defaults(handler=run_fiddle_cmd)


def run_fiddle_cmd(args) -> int:
    from rtgen.evaluate.fiddle_paper import FiddleEvalConfig, fiddle_table, format_table

    models = tuple(args.models or ())
    config = FiddleEvalConfig(models=models, max_tokens=args.max_tokens, data_file=args.data, device=args.device)
    report = fiddle_table(config, progress=note)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def run_follow_cmd(args) -> int:
    from rtgen.evaluate.fidelity import genre_sources, load_pieces
    from rtgen.evaluate.follow import follow_accuracy, format_report
    from rtgen.nets.classifier import installed_classifier

    classifier = installed_classifier()
    _, valid = load_pieces(genre_sources(classifier.genres), max_train=1)
    report = follow_accuracy(classifier, valid, per_piece=args.per_piece)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def run_zoo_cmd(args) -> int:
    from rtgen.errors import RtgenError
    from rtgen.evaluate.zoo import SHIPPED_BASELINES, ZooConfig, format_table, run_zoo, zoo_folders

    models = [m.strip() for m in args.models.split(",")] if args.models else [str(p) for p in zoo_folders()]
    if not args.no_shipped and not args.models:
        models += list(SHIPPED_BASELINES)
    if not models:
        raise RtgenError(
            "no trained architectures in models/zoo/ or runs/zoo/: train them with rtgen train --config "
            "models/configs/zoo/NAME.toml (docs/zoo.md)"
        )
    config = ZooConfig(max_valid_tokens=args.max_tokens, samples=args.samples, write=args.write)
    rows = run_zoo(models, config, progress=note)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def run_music_cmd(args) -> int:
    from rtgen.errors import RtgenError
    from rtgen.evaluate.music import MusicEvalConfig, run_music_eval
    from rtgen.evaluate.music_report import format_report
    from rtgen.nets.checkpoint import genre_models

    if args.quick:
        args.pieces, args.bars, args.real_pieces = 6, "8", 12
    default = "genres" if args.quick else "genres,blends" if args.no_presets else "genres,blends,presets"
    kinds = args.settings or default
    try:
        bars = tuple(sorted({int(b) for b in args.bars.split(",") if b.strip()}))
    except ValueError:
        raise RtgenError(f"--bars {args.bars!r}: expected whole numbers of bars, e.g. 8,16,32") from None
    if args.pieces < 2 or args.real_pieces < 2 or not bars or min(bars) < 4:
        raise RtgenError("--pieces and --real-pieces must be >= 2, and every --bars >= 4")
    genres = genre_models()
    overrides = tuple(_control_values(args.controls)) if args.controls else ()
    chosen = tuple(s.strip() for s in kinds.split(",") if s.strip())
    config = MusicEvalConfig(
        pieces=args.pieces,
        bars=bars,
        seed=args.seed,
        settings=chosen,
        overrides=overrides,
        real_pieces=args.real_pieces,
    )
    report = run_music_eval(config, genres, progress=True)
    if not report["settings"]:
        raise RtgenError(f"--settings {kinds!r}: no such setting among genres {', '.join(genres)}")
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def run_classifier_cmd(args) -> int:
    from rtgen.evaluate.fidelity import fit_classifier
    from rtgen.nets.checkpoint import genre_models
    from rtgen.nets.classifier import CLASSIFIER_FILE
    from rtgen.paths import models_dir

    genres = genre_models()  # the genres `rtgen run` loads, which the follow control weighs
    classifier = fit_classifier(genres or ["folk", "fiddle", "chorale", "renaissance"], max_train=args.max_train)
    path = classifier.save(models_dir() / CLASSIFIER_FILE)
    print(json.dumps(classifier.info, indent=2, sort_keys=True) if args.json else f"{path}: {classifier.info}")
    return 0


def run_fidelity_cmd(args) -> int:
    from rtgen.errors import RtgenError
    from rtgen.evaluate.fidelity import run_fidelity
    from rtgen.nets.checkpoint import CONDITIONAL_MODEL, find_model
    from rtgen.nets.classifier import installed_classifier
    from rtgen.nets.twophase import TWO_PHASE_MODEL

    classifier = installed_classifier()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method, model in (("conditional", CONDITIONAL_MODEL), ("two-phase", TWO_PHASE_MODEL)):
        if method in methods and find_model(model) is None:
            methods.remove(method)
            print(f"rtgen: note: no models/{model} installed; skipping the {method} method", file=sys.stderr)
    if not methods:
        raise RtgenError(f"--methods {args.methods!r}: nothing left to test (their models are not installed)")
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",") if p.strip()]
    if any(len(p) != 2 or set(p) - set(classifier.genres) for p in pairs):
        raise RtgenError(f"--pairs {args.pairs!r}: expected genre:against pairs of {', '.join(classifier.genres)}")
    log = None if args.json else note
    report = run_fidelity(classifier, methods, args.pieces, args.bars, pairs, args.seed, args.device, log)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    for method, result in report["methods"].items():
        own = ", ".join(f"{g} {r['own_share']:.0%}" for g, r in result["single"].items())
        print(f"{method:<12} own share at full weight: {own}")
        for sweep in result["sweeps"]:
            curve = " ".join(f"{s:.2f}" for s in sweep["share"])
            print(f"{'':<12} {sweep['genre']} vs {sweep['against']}: share {curve}, Spearman {sweep['spearman']:.2f}")
    print(f"targets {'met' if report['ok'] else 'NOT all met'} ({report['seconds']:.0f} s)")
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def run(args) -> int:
    from rtgen.evaluate.metrics import EvalConfig, evaluate_models

    names = [n.strip() for n in args.genres.split(",") if n.strip()] if args.genres else None
    config = EvalConfig(max_valid_tokens=args.max_tokens, samples=args.samples, seed=args.seed)
    results = evaluate_models(names, config, write=args.write, progress=note)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0
    columns = ("model_ce", "ngram_ce", "ngram_order", "ce_gain", "accuracy", "f1", "copy_rate", "valid_copy_rate")
    print(f"{'model':<22}" + "".join(f"{c:>16}" for c in columns))
    for name, metrics in results.items():
        print(f"{name:<22}" + "".join(f"{_fmt(metrics[c]):>16}" for c in columns))
    return 0


def _control_values(text: str):
    """``name=value,...`` as (name, value) pairs, each value checked by the control registry (``rtgen.controls``)."""
    from rtgen.controls import ControlError, spec

    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            yield name.strip(), spec(name.strip()).from_text(value, name.strip())
        except ControlError as error:
            raise ControlError(f"--controls: {error}") from None
