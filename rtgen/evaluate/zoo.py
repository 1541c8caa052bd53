"""``rtgen eval zoo``: every trained architecture on every corpus, in one table, beside the papers' figures.

A row is one checkpoint folder (by default each shipped zoo network in
``models/zoo/``, a run of the same name under ``runs/zoo/`` in its place, and
the shipped genre models of the same corpora, the 2 x 256 network trained on
a lent GPU): what it is (architecture, encoding, parameters), what it cost
(training tokens, minutes, device), how well it predicts (validation CE,
accuracy and macro F1 on the same validation head for every row, beside the
best Kneser-Ney n-gram on that head), what it costs live (one model's
``Engine.step`` p50/p99 on this machine) and what its samples do (in-scale
ratio, copy rate against the training data, real pieces' copy rate).
Cross-entropies compare only within one encoding: a time-step token is not an
event token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtgen.evaluate.metrics import EvalConfig
from rtgen.live.timing import summary_ms
from rtgen.train.config import TIME_CAP

ZOO_DIR = Path("runs/zoo")
SHIPPED_BASELINES = ("fiddle", "folk")  # the shipped models of the zoo's corpora
# The papers' own figures, on their own data and splits: context for a reader, not a like-for-like comparison.
PAPER_FIGURES = {
    "two-phase": "fusion paper: macro F1 0.25-0.31; final training loss 1.65-2.88",
    "lstm-256-512-256": "one-composer paper: loss curves only; validation loss rises after early epochs",
    "lstm3x512": "genre paper: loss curves only (30 guitar files, 200 epochs)",
    "vae": "ESAC paper: loss curves only; here CE is the reconstruction BCE per sixteenth, accuracy the share of "
    "sixteenths reconstructed, step the time to vary a two-bar call",
}


@dataclass(frozen=True)
class ZooConfig:
    max_valid_tokens: int = 20_000  # the validation head every row is scored on (window models: each token)
    samples: int = 16  # sampled pieces per row for in-scale ratio and copy rate
    step_count: int = 300  # timed live steps per row
    seed: int = 0
    write: bool = False  # store each row's figures in its meta.json (metrics.eval, as `rtgen eval --write`)


def zoo_folders(roots: Sequence[Path] | None = None) -> list[Path]:
    """Every checkpoint (a folder with meta.json and weights) under ``roots``, sorted by name; a later root's
    folder takes over a name. Default: the shipped zoo (``models/zoo``), then this folder's runs (``runs/zoo``)."""
    from rtgen.paths import shipped_zoo_dir

    found: dict[str, Path] = {}
    for root in roots if roots is not None else (shipped_zoo_dir(), ZOO_DIR):
        if root.is_dir():
            for p in root.iterdir():
                if (p / "meta.json").exists() and (p / "model.safetensors").exists():
                    found[p.name] = p
    return [found[name] for name in sorted(found)]


def describe(meta: dict) -> dict:
    """What a checkpoint is and what it cost, from its meta.json.

    A genre-conditioned model (two-phase, multi) is scored with its first genre's weight alone on that genre's
    stream (``evaluate_row``), so its corpus is that genre's, not the unused top-level ``corpus`` default.
    """
    from rtgen.nets.architectures import arch_name

    train, metrics = meta.get("train", {}), meta.get("metrics", {})
    genres = train.get("genres") or {}
    first = (meta.get("genres") or list(genres) or [None])[0]
    return {
        "arch": arch_name(meta),
        "corpus": (genres.get(first) or train.get("corpus") or {}).get("source", "?"),
        "encoding": meta.get("encoding", {}).get("name", "?"),
        "parameters": meta.get("parameters"),
        "train_tokens": metrics.get("train_tokens"),
        "train_minutes": round(metrics.get("train_seconds", float("nan")) / 60, 1),
        "device": metrics.get("device", "?"),
        "stopped_by": metrics.get("stopped_by", "?"),
        "paper": PAPER_FIGURES.get(train.get("arch", ""), ""),
    }


def step_latency(loaded, steps: int) -> tuple[float, float]:
    """One model's ``Engine.step`` p50 and p99 in ms, from warm state (``rtgen.engine.latency``)."""
    from rtgen.engine.latency import time_fused_steps

    timings = summary_ms(time_fused_steps([loaded], steps))
    return timings["p50_ms"], timings["p99_ms"]


def vae_row(folder: str | Path, config: ZooConfig, say: Callable[[str], None]) -> dict:
    """A phrase VAE's row: its reconstruction figures from training, and the time to vary one phrase.

    Its "CE" is the validation reconstruction loss (BCE per sixteenth) and its
    accuracy the share of sixteenths reconstructed right: neither predicts a
    next token, so they sit in the table for its own sake, not to compare.
    """
    import torch

    from rtgen.data.seeds import FIDDLE
    from rtgen.engine.variation import PhraseModel
    from rtgen.nets.checkpoint import load_model

    loaded = load_model(folder, kind="vae")
    metrics = loaded.meta["metrics"]
    phrases = PhraseModel(loaded)
    call = FIDDLE  # the built-in fiddle phrase: the cost of a variation hardly depends on what is varied
    generator = torch.Generator().manual_seed(config.seed)
    timings = []
    for _ in range(config.step_count // 10):
        started = time.perf_counter()
        phrases.vary(call, 0.5, generator)
        timings.append(time.perf_counter() - started)
    say(f"{len(timings)} variations of a two-bar call timed")
    figures = summary_ms(timings)
    empty = dict.fromkeys(("f1", "ngram_ce", "ngram_order", "ngram_accuracy", "ngram_f1", "ce_gain", "in_scale"))
    return {
        "model": str(folder),
        **describe(loaded.meta),
        **empty,
        "model_ce": metrics.get("valid_bce"),
        "accuracy": metrics.get("valid_accuracy"),
        "copy_rate": None,
        "valid_copy_rate": None,
        "valid_tokens": None,
        "step_p50_ms": round(figures["p50_ms"], 3),
        "step_p99_ms": round(figures["p99_ms"], 3),
    }


def evaluate_row(folder: str | Path, config: ZooConfig, say: Callable[[str], None]) -> dict:
    """The zoo figures of one checkpoint folder or installed model name."""
    from rtgen.engine.variation import is_vae
    from rtgen.evaluate.metrics import evaluate_model
    from rtgen.nets.checkpoint import load_model

    if is_vae(folder):
        return vae_row(folder, config, say)
    eval_config = EvalConfig(max_valid_tokens=config.max_valid_tokens, samples=config.samples, seed=config.seed)
    loaded = load_model(folder)
    row = {"model": str(folder), **describe(loaded.meta)}
    _, per_genre = evaluate_model(str(folder), eval_config, "cpu", say)
    if config.write:
        _write_eval(folder, per_genre)
    figures = next(iter(per_genre.values()))
    started = time.monotonic()
    p50, p99 = step_latency(loaded, config.step_count)
    say(f"live step timed ({time.monotonic() - started:.1f} s)")
    keys = ("model_ce", "accuracy", "f1", "ngram_ce", "ngram_order", "ngram_accuracy", "ngram_f1", "ce_gain")
    row.update({key: figures[key] for key in keys})
    row.update(in_scale=figures["in_scale"], copy_rate=figures["copy_rate"], valid_copy_rate=figures["valid_copy_rate"])
    row.update(valid_tokens=figures["valid_tokens"], step_p50_ms=round(p50, 3), step_p99_ms=round(p99, 3))
    return row


def _write_eval(folder: str | Path, per_genre: dict) -> None:
    """``per_genre`` into the checkpoint's meta.json, where `rtgen models` reads its figures."""
    from rtgen.nets.checkpoint import read_meta, resolve, write_meta

    weights = resolve(folder)
    meta = read_meta(weights)
    meta.setdefault("metrics", {})["eval"] = per_genre
    write_meta(weights.parent, meta)


def run_zoo(models: Sequence[str | Path], config: ZooConfig, progress: Callable[[str], None] | None = None) -> list:
    rows = []
    for number, model in enumerate(models, 1):

        def say(line: str, prefix: str = f"zoo [{number}/{len(models)}] {model}") -> None:
            if progress is not None:
                progress(f"{prefix}: {line}")

        rows.append(evaluate_row(model, config, say))
    return rows


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def format_table(rows: Sequence[dict]) -> str:
    """A Markdown table, one row per checkpoint, sorted by corpus then architecture."""
    header = (
        "| model | arch | corpus | encoding | parameters | training (tokens, min, device) | valid CE | accuracy "
        "| macro F1 | best n-gram CE (order) / accuracy / F1 | step p50 / p99 ms | in-scale | copy rate (real) |"
    )
    lines = [header, "|" + " --- |" * 13]
    for row in sorted(rows, key=lambda r: (r["corpus"], r["encoding"], r["arch"])):
        training = f"{_fmt(row['train_tokens'], ',')}, {_fmt(row['train_minutes'], '.1f')}, {row['device']}"
        training += ", CUT by its time cap" if row.get("stopped_by") == TIME_CAP else ""
        ngram = (
            f"{_fmt(row['ngram_ce'], '.3f')} ({_fmt(row['ngram_order'], 'd')}) / "
            f"{_fmt(row['ngram_accuracy'], '.3f')} / {_fmt(row['ngram_f1'], '.3f')}"
        )
        copies = f"{_fmt(row['copy_rate'], '.3f')} ({_fmt(row['valid_copy_rate'], '.3f')})"
        lines.append(
            f"| {Path(row['model']).name} | {row['arch']} "
            f"| {row['corpus']} | {row['encoding']} | {_fmt(row['parameters'], ',')} | {training} "
            f"| {_fmt(row['model_ce'], '.3f')} | {_fmt(row['accuracy'], '.3f')} | {_fmt(row['f1'], '.3f')} "
            f"| {ngram} | {_fmt(row['step_p50_ms'], '.2f')} / {_fmt(row['step_p99_ms'], '.2f')} "
            f"| {_fmt(row['in_scale'], '.3f')} | {copies} |"
        )
    papers = sorted({(r["arch"], r["paper"]) for r in rows if r["paper"]})
    lines += ["", *(f"- {arch}: {text}" for arch, text in papers)]
    return "\n".join(lines)
