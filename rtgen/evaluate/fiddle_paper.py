"""The fiddle paper's table: next-step accuracy at contexts of 64, 128 and 256 time steps, and what it means.

The fiddle paper (Agrawal, Jain, Khurana, "Generation of Music using LSTM
Recurrent Neural Networks"; DESIGN.md's paper 003) trains one Keras LSTM per
input length on Ryan's Mammoth Collection, one step per sixteenth, and reports
accuracies of 45 %, 47.5 % and 43 % for inputs of 64, 128 and 256 steps
(section 2.4; Keras's accuracy after 10 epochs, on a split it does not
describe). It calls 64 steps one 4/4 bar; at sixteenths they are four, and the
step counts are what is reproduced here.

Each time-step model is scored the way the paper's networks predict: every
validation token from exactly the model's context (its training window), from
a fresh state (``rtgen.train.data.score_windows``). On the same tokens stand
Kneser-Ney n-grams of orders 1-8 fitted on the model's own training stream, and
the always-hold baseline (predict ``_``: the sounding note goes on), which in
this encoding is right at roughly 4 steps in 10. A figure near the paper's
says little more than that notes last.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtgen.errors import RtgenError

PAPER_ACCURACY = {64: 0.45, 128: 0.475, 256: 0.43}  # the fiddle paper, section 2.4, by input steps
CONTEXTS = tuple(PAPER_ACCURACY)
CONFIG_NAME = "fiddle-timestep-{context}.toml"  # under <shipped models>/configs/zoo/
MAX_ORDER = 8  # n-gram orders 1..8


@dataclass(frozen=True)
class FiddleEvalConfig:
    """What ``rtgen eval fiddle`` scores, and where."""

    models: tuple[str, ...] = ()  # model folders; empty: each zoo config's out_dir, else models/zoo/ (shipped)
    max_order: int = MAX_ORDER  # Kneser-Ney orders 1..max_order; the most accurate is reported
    max_tokens: int | None = None  # validation tokens scored (the stream's head); None: all of them
    data_file: str | None = None  # prepared streams (`rtgen train --prepare`) instead of rebuilding the corpus
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    batch: int = 256  # windows per forward pass


@dataclass(frozen=True)
class _Entry:
    """One row to fill: a model folder (trained or not), its context and its training config."""

    folder: Path
    context: int
    train: object  # rtgen.train.config.TrainConfig
    trained: bool
    config_path: Path | None = None  # the zoo config that trains it (rows from the default set)


def config_path(context: int) -> Path:
    from rtgen.paths import shipped_models_dir

    return shipped_models_dir() / "configs" / "zoo" / CONFIG_NAME.format(context=context)


def train_command(config: Path, out: Path | None = None) -> str:
    """The exact command that trains ``config`` (into ``out`` when given, else into the config's out_dir)."""
    shown = config.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    return f"rtgen train --config {shown}" + (f" --out {out}" if out is not None else "")


def hold_accuracy(targets: np.ndarray, hold_id: int) -> float:
    """Share of ``targets`` that are the hold token: the accuracy of always predicting it."""
    return float((np.asarray(targets) == hold_id).mean()) if len(targets) else float("nan")


def accuracy(targets: np.ndarray, predictions: np.ndarray) -> float:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets for {len(predictions)} predictions")
    return float((np.asarray(targets) == np.asarray(predictions)).mean()) if len(targets) else float("nan")


def fit_ngram(train: np.ndarray, vocab: int, sep_id: int, max_order: int):
    """Kneser-Ney orders 1..max_order fitted on ``train``."""
    from rtgen.nets.ngram import KneserNey

    return KneserNey(vocab, max_order, pad_id=sep_id).fit([train])


def ngram_predictions(model, valid: np.ndarray) -> dict:
    """{order: argmax prediction for ``valid[1:]``} of a fitted ``KneserNey``."""
    return {order: predictions for order, (_, predictions) in model.score(valid).items()}


def paper_figures(valid: np.ndarray, context: int, ngram, encoding) -> dict:
    """The paper's measure (``rtgen.evaluate.fiddle_measure``) on ``valid[context:]``: the best n-gram order's
    and always-continue's accuracy (a model's comes with its scores, ``_model_figures``)."""
    from rtgen.evaluate import fiddle_measure

    by_order = fiddle_measure.ngram_accuracy(ngram, valid, context, encoding)
    best = max(by_order, key=lambda order: (by_order[order], -int(order)))
    return {
        "ngram_order": int(best),
        "ngram_accuracy": by_order[best],
        "continue_accuracy": fiddle_measure.continue_accuracy(valid, context, encoding),
    }


def baseline_figures(valid: np.ndarray, context: int, ngram: dict, hold_id: int) -> dict:
    """Hold and n-gram accuracy on the tokens a model of ``context`` scores: ``valid[context:]``.

    ``ngram``: ``ngram_predictions`` of the same ``valid`` (prediction i is for token i + 1).
    """
    targets = valid[context:]
    by_order = {str(order): accuracy(targets, predictions[context - 1 :]) for order, predictions in ngram.items()}
    best = max(by_order, key=lambda order: (by_order[order], -int(order)))
    return {
        "tokens": int(targets.size),
        "hold_accuracy": hold_accuracy(targets, hold_id),
        "ngram_order": int(best),
        "ngram_accuracy": by_order[best],
        "ngram_accuracy_by_order": by_order,
    }


def fiddle_table(config: FiddleEvalConfig = FiddleEvalConfig(), progress: Callable[[str], None] | None = None):
    """The report behind ``rtgen eval fiddle``: one row per model (context), see ``format_table``.

    Models missing from the default set still get their row (paper, n-gram,
    hold, from the zoo config's data) with the command that trains them.
    """
    say = progress or (lambda line: None)
    started = time.monotonic()
    entries = _entries(config)
    rows, streams, ngrams = [], {}, {}
    for entry in entries:
        key = _data_key(entry.train, config)
        if key not in streams:
            streams[key] = _load_valid(entry.train, config, say)
        encoding, train, valid = streams[key]
        if key not in ngrams:
            begun = time.monotonic()
            fitted = fit_ngram(train, len(encoding), encoding.sep_id, config.max_order)
            ngrams[key] = (fitted, ngram_predictions(fitted, valid))
            say(f"fiddle: n-grams 1-{config.max_order} on {train.size:,} tokens ({time.monotonic() - begun:.1f} s)")
        fitted, predictions = ngrams[key]
        if valid.size <= entry.context:
            raise RtgenError(f"{valid.size} validation tokens leave none to score after a context of {entry.context}")
        row = {
            "context": entry.context,
            "model": str(entry.folder),
            "trained": entry.trained,
            "paper_accuracy": PAPER_ACCURACY.get(entry.context),
            **baseline_figures(valid, entry.context, predictions, encoding.hold_id),
        }
        row["paper_measure"] = paper_figures(valid, entry.context, fitted, encoding)
        if entry.trained:
            figures = _model_figures(entry, encoding, valid, config, say)
            row["paper_measure"]["accuracy"] = figures.pop("paper_accuracy")
            row.update(figures)
        else:
            row["train_command"] = train_command(entry.config_path)
        rows.append(row)
    return {
        "paper": "fiddle (Agrawal, Jain, Khurana): LSTM on Ryan's Mammoth, time steps of a sixteenth",
        "encoding": "timestep",
        "max_order": config.max_order,
        "rows": rows,
        "seconds": round(time.monotonic() - started, 1),
    }


def _entries(config: FiddleEvalConfig) -> list[_Entry]:
    """The named folders (each must hold a time-step model), or the default set from the zoo configs."""
    if config.models:
        return [_trained_entry(Path(folder)) for folder in config.models]
    from rtgen.config import load
    from rtgen.paths import shipped_zoo_dir
    from rtgen.train.config import TrainConfig

    entries = []
    for context in CONTEXTS:
        path = config_path(context)
        if not path.exists():
            raise RtgenError(f"{path}: no such config; pass the model folders with --models")
        train = load(TrainConfig, path)
        folder = Path(train.out_dir)
        if not _has_weights(folder) and _has_weights(shipped_zoo_dir() / folder.name):
            folder = shipped_zoo_dir() / folder.name  # not trained here: the shipped one
        entries.append(_trained_entry(folder) if _has_weights(folder) else _Entry(folder, train.seq_len, train, False))
        entries[-1] = dataclasses.replace(entries[-1], config_path=path)
    return entries


def _has_weights(folder: Path) -> bool:
    from rtgen.nets.checkpoint import WEIGHTS

    return (folder / WEIGHTS).exists()


def _trained_entry(folder: Path) -> _Entry:
    from rtgen.config import from_dict
    from rtgen.nets.checkpoint import WEIGHTS, read_meta
    from rtgen.train.config import TrainConfig

    if not _has_weights(folder):
        command = train_command(config_path(CONTEXTS[0]), folder)
        raise RtgenError(f"{folder}: no trained model; train one with: {command} (or the -128, -256 configs)")
    meta = read_meta(folder / WEIGHTS)
    if meta["encoding"].get("name") != "timestep":
        raise RtgenError(f"{folder}: {meta['encoding'].get('name')} encoding; the fiddle table needs timestep models")
    if "train" not in meta:
        raise RtgenError(f"{folder}: meta.json has no training config, so its data cannot be rebuilt")
    train = from_dict(TrainConfig, meta["train"], f"{folder / 'meta.json'} train")
    if train.genres:
        raise RtgenError(f"{folder}: a conditional model; the fiddle table scores one-corpus models")
    return _Entry(folder, meta["config"].get("window") or train.seq_len, train, True)


def _data_key(train, config: FiddleEvalConfig) -> str:
    """What the streams depend on: same key, same training and validation streams."""
    fields = ("corpus", "encoding", "transpose", "valid_fraction", "seed")
    return json.dumps([config.data_file, *(dataclasses.asdict(train)[f] for f in fields)], sort_keys=True)


def _load_valid(train, config: FiddleEvalConfig, say: Callable[[str], None]):
    """(encoding, training stream, validation head) of a run, from the corpus cache or ``config.data_file``."""
    from rtgen.train.data import load_data

    begun = time.monotonic()
    encoding, data = load_data(dataclasses.replace(train, data_file=config.data_file), progress=False)
    if encoding.name != "timestep":
        raise RtgenError(f"the fiddle table needs the timestep encoding; these streams are {encoding.name}")
    genre = data[0]
    valid = genre.valid if config.max_tokens is None else genre.valid[: config.max_tokens]
    say(f"fiddle: {genre.train.size:,} training, {valid.size:,} validation tokens ({time.monotonic() - begun:.1f} s)")
    return encoding, genre.train, valid


def _model_figures(entry: _Entry, encoding, valid: np.ndarray, config: FiddleEvalConfig, say) -> dict:
    from rtgen.evaluate.fiddle_measure import model_scores
    from rtgen.nets.checkpoint import load_model
    from rtgen.nets.device import pick_device

    loaded = load_model(entry.folder, str(pick_device(config.device)))
    begun = time.monotonic()
    say(f"fiddle: scoring {entry.folder} on {valid.size - entry.context:,} windows of {entry.context} steps")
    score, paper_accuracy = model_scores(loaded.model, valid, entry.context, encoding, batch=config.batch)
    say(f"fiddle: {entry.folder} scored ({time.monotonic() - begun:.1f} s)")
    metrics = loaded.meta.get("metrics", {})
    return {
        "paper_accuracy": paper_accuracy,
        "accuracy": accuracy(score.targets, score.predictions),
        "cross_entropy": score.cross_entropy,
        "parameters": loaded.meta.get("parameters"),
        "train_seconds": metrics.get("train_seconds"),
        "train_device": metrics.get("device"),
    }


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def format_table(report: dict) -> str:
    """The report as a table, one line per context, and what the columns mean beneath it."""
    header = (
        f"{'context':>7}  {'model':>8}  {'best n-gram':>16}  {'hold _':>8}  |  {'paper':>8}  {'model':>8}  "
        f"{'best n-gram':>16}  {'goes on':>8}  {'tokens':>7}  folder"
    )
    lines = ["rtgen's token accuracy".ljust(47) + "|  the paper's measure (13 classes)", header]
    for row in report["rows"]:
        ngram = f"{_percent(row['ngram_accuracy'])} (n={row['ngram_order']})"
        paper = row["paper_measure"]
        paper_ngram = f"{_percent(paper['ngram_accuracy'])} (n={paper['ngram_order']})"
        where = row["model"] if row["trained"] else f"{row['model']} not trained: {row['train_command']}"
        lines.append(
            f"{row['context']:>7}  {_percent(row.get('accuracy')):>8}  {ngram:>16}  {_percent(row['hold_accuracy']):>8}"
            f"  |  {_percent(row['paper_accuracy']):>8}  {_percent(paper.get('accuracy')):>8}  {paper_ngram:>16}  "
            f"{_percent(paper['continue_accuracy']):>8}  {row['tokens']:>7,}  {where}"
        )
    lines += [
        "",
        "next-step accuracy over the validation time steps (sixteenths), each predicted from exactly `context`",
        f"steps from a fresh state; n-gram: Kneser-Ney orders 1-{report['max_order']} fitted on the same training "
        "stream, the most",
        "accurate shown; hold: always predict `_` (the note goes on); paper: the fiddle paper's own figures.",
        "the paper's measure: the sounding pitch class or silence (its 13-wide C4-C5 vector), the model's and the",
        "n-gram's mass folded the same way (rtgen.evaluate.fiddle_measure); goes on: always predict what sounds.",
    ]
    return "\n".join(lines)
