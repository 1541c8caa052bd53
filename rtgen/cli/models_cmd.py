"""``rtgen models``: the installed models and the figures their meta.json records."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list installed models with their corpus, size and validation figures",
        description="List the shipped models and the user's own (RTGEN_MODELS, a folder added beside the shipped "
        "ones; its model wins a name clash), checking that each checkpoint loads.",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--ship",
        nargs="+",
        metavar="RUN",
        help="copy trained checkpoint folders into the shipped zoo (models/zoo/NAME), float16 where the step allows",
    )
    parser.set_defaults(handler=run)


def summary(name: str, meta: dict) -> dict:
    """The figures of one model, from its meta.json (``metrics.eval`` once `rtgen eval --write` ran)."""
    from rtgen.nets.architectures import arch_name
    from rtgen.train.config import TIME_CAP

    metrics = meta.get("metrics", {})
    evaluated = metrics.get("eval", {})
    corpus = meta.get("corpus", {})
    return {
        "name": name,
        "arch": arch_name(meta),
        "encoding": meta.get("encoding", {}).get("name", "?"),
        "genres": meta.get("genres", [meta.get("genre", name)]),
        "corpus": ", ".join(f"{c.get('source')} ({c.get('parts')})" for c in corpus.values()),
        "pieces": sum(int(c.get("pieces", 0)) for c in corpus.values()),
        "train_tokens": sum(int(c.get("train_tokens", 0)) for c in corpus.values()),
        "parameters": meta.get("parameters"),
        "epochs": metrics.get("epochs"),
        "trained_tokens": metrics.get("train_tokens"),
        "train_minutes": round(metrics.get("train_seconds", 0) / 60, 1),
        "valid_ce": metrics.get("valid_ce"),
        "cut_by_time_cap": metrics.get("stopped_by") == TIME_CAP,
        "eval": {
            genre: {k: e.get(k) for k in ("model_ce", "ngram_ce", "ngram_order", "accuracy", "f1", "copy_rate")}
            for genre, e in evaluated.items()
        },
    }


def entry(model) -> dict:
    """One installed model for the listing: its figures, or why its checkpoint cannot be used."""
    from rtgen.nets.checkpoint import WEIGHTS, check_model, read_meta

    place = {"folder": str(model.folder), "user": not model.shipped, "hides": str(model.hides) if model.hides else None}
    problem = check_model(model.folder)
    if problem is not None:
        return {"name": model.name, "broken": problem, **place}
    return {**summary(model.name, read_meta(model.folder / WEIGHTS)), "broken": None, **place}


def ship(runs: list[str]) -> int:
    """``--ship``: each run's checkpoint into the shipped zoo, one line each."""
    from pathlib import Path

    from rtgen.nets.shipping import ship as ship_one
    from rtgen.paths import shipped_zoo_dir

    for run_folder in runs:
        done = ship_one(run_folder, shipped_zoo_dir() / Path(run_folder).resolve().name)
        print(
            f"{done['folder']}: {done['weights_dtype']} weights ({done['bytes'] / 1e6:.1f} MB), "
            f"half-width drift {done['half_drift']:.4f}"
        )
    return 0


def run(args) -> int:
    from rtgen.nets.checkpoint import installed_folders
    from rtgen.paths import models_dirs

    if args.ship:
        return ship(args.ship)
    found = [entry(model) for model in installed_folders(zoo=True)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(f"no models installed in {' or '.join(str(folder) for folder in models_dirs())}")
        return 0
    for model in found:
        for line in describe(model):
            print(line)
    return 0


def _shown(value, spec: str) -> str:
    """A figure meta.json may lack (a checkpoint saved outside `rtgen train`): '?' when absent."""
    return "?" if value is None else format(value, spec)


def describe(model: dict) -> list[str]:
    """The lines ``rtgen models`` prints for one model."""
    lines = []
    if model["broken"]:
        lines.append(f"{model['name']}: BROKEN, not loadable: {model['broken']}")
    else:
        lines.append(
            f"{model['name']} ({model['arch']}, {model['encoding']} encoding): "
            f"{model['corpus'] or 'corpus not recorded'}; {model['pieces']:,} pieces, "
            f"{model['train_tokens']:,} train tokens, {model['parameters'] or 0:,} parameters, "
            f"{_shown(model['epochs'], 'd')} epochs ({_shown(model['trained_tokens'], ',')} tokens) in "
            f"{model['train_minutes']} min, "
            f"valid CE {_shown(model['valid_ce'], '.3f')}"
        )
        if model["cut_by_time_cap"]:
            lines.append("  CUT by its time cap (max_minutes) before its epochs: its figures depend on the machine")
        for genre, e in model["eval"].items():
            gain = 1 - e["model_ce"] / e["ngram_ce"]
            above = ", still ABOVE its n-gram" if gain < 0 else ""
            lines.append(
                f"  {genre}: CE {e['model_ce']:.3f} vs {e['ngram_order']}-gram {e['ngram_ce']:.3f} "
                f"({gain:+.1%}{above}), accuracy {e['accuracy']:.3f}, F1 {e['f1']:.3f}, copy rate {e['copy_rate']:.3f}"
            )
    if model["user"]:
        hides = f", used instead of the shipped {model['hides']}" if model["hides"] else ""
        lines.append(f"  from {model['folder']} (RTGEN_MODELS){hides}")
    return lines
