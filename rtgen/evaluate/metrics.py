"""How good is a genre model: next-token metrics beside an n-gram baseline, and music of its samples.

On a genre's validation stream (pieces the model never saw, original keys):
cross-entropy (nats/token), perplexity, next-token accuracy and macro F1 over
token classes, for the model and for interpolated Kneser-Ney n-grams of
orders 1..5 fitted on the same training stream (the best order is reported).
On generated samples (temperature 1, from a piece start): the share of notes
in the key music21 finds, pitch-class entropy, pitch range, notes per 4/4 bar,
and the copy rate (share of 8-note pitch n-grams found verbatim in the
training data) beside the same rate for real validation pieces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rtgen.evaluate.statistics import pitch_class_entropy
from rtgen.nets.ngram import KneserNey
from rtgen.train.data import GenreData, score_stream, split_pieces


@dataclass(frozen=True)
class EvalConfig:
    max_valid_tokens: int = 200_000  # validation tokens scored per genre (the stream's head)
    max_order: int = 5  # n-gram orders 1..max_order are fitted; the best is reported
    samples: int = 16  # generated pieces per model
    sample_tokens: int = 200  # tokens per generated piece (fewer if the model ends the piece)
    temperature: float = 1.0
    copy_n: int = 8  # pitch n-gram length for the copy rate
    seed: int = 0


def macro_f1(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Unweighted mean F1 over every token class that occurs as a target or a prediction."""
    size = int(max(targets.max(initial=0), predictions.max(initial=0))) + 1
    tp = np.bincount(targets[targets == predictions], minlength=size).astype(np.float64)
    predicted = np.bincount(predictions, minlength=size).astype(np.float64)
    actual = np.bincount(targets, minlength=size).astype(np.float64)
    present = (predicted + actual) > 0
    if not present.any():
        return float("nan")
    f1 = 2 * tp[present] / (predicted[present] + actual[present])
    return float(f1.mean())


def token_metrics(nll: np.ndarray, targets: np.ndarray, predictions: np.ndarray) -> dict:
    ce = float(nll.mean())
    return {
        "ce": ce,
        "perplexity": math.exp(ce),
        "accuracy": float((targets == predictions).mean()),
        "f1": macro_f1(targets, predictions),
        "tokens": int(targets.size),
    }


def ngram_baseline(data: GenreData, vocab: int, config: EvalConfig, sep_id: int) -> dict:
    """Kneser-Ney orders 1..max_order on the training stream; metrics of the best on validation."""
    model = KneserNey(vocab, config.max_order, pad_id=sep_id).fit([data.train])
    valid = data.valid[: config.max_valid_tokens]
    by_order = {}
    best = None
    for order, (nll, predictions) in model.score(valid).items():
        metrics = token_metrics(nll, valid[1:], predictions)
        by_order[order] = metrics["ce"]
        if best is None or metrics["ce"] < best[1]["ce"]:
            best = (order, metrics)
    order, metrics = best
    return {
        "ngram_ce": metrics["ce"],
        "ngram_order": order,
        "ngram_perplexity": metrics["perplexity"],
        "ngram_accuracy": metrics["accuracy"],
        "ngram_f1": metrics["f1"],
        "ngram_ce_by_order": by_order,
    }


@torch.no_grad()
def sample_pieces(model, encoding, config: EvalConfig, genre=None) -> list[list[int]]:
    """``config.samples`` pieces sampled from a piece start (SEP), each cut at the model's next SEP."""
    generator = torch.Generator(device=model.device).manual_seed(config.seed)
    batch = config.samples
    token = torch.full((batch,), encoding.sep_id, dtype=torch.long, device=model.device)
    state = model.initial_state(batch)
    rows = []
    for _ in range(config.sample_tokens):
        logits, state = model.step(token, state, genre)
        probs = torch.softmax(logits / config.temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        rows.append(token.cpu())
    tokens = torch.stack(rows, dim=1).numpy()
    pieces = []
    for row in tokens:
        ends = np.flatnonzero(row == encoding.sep_id)
        pieces.append([int(t) for t in row[: ends[0] if ends.size else len(row)]])
    return pieces


def music_metrics(notes) -> dict:
    """In-scale ratio (music21 key analysis), pitch-class entropy (bits), pitch range, notes per 4/4 bar."""
    if not notes:
        return {"in_scale": float("nan"), "pc_entropy": float("nan"), "pitch_range": 0, "notes_per_bar": 0.0}
    from music21 import note as m21note
    from music21 import stream as m21stream

    pitches = np.array([n.pitch for n in notes])
    part = m21stream.Stream()
    for n in notes:
        part.insert(float(n.start), m21note.Note(n.pitch, quarterLength=float(n.duration)))
    key = part.analyze("key")
    scale = {p.pitchClass for p in key.getScale().getPitches()}
    beats = float(max(n.end for n in notes) - min(n.start for n in notes))
    return {
        "in_scale": float(np.isin(pitches % 12, list(scale)).mean()),
        "pc_entropy": pitch_class_entropy(notes),
        "pitch_range": int(pitches.max() - pitches.min()),
        "notes_per_bar": len(notes) / max(beats / 4, 0.25),
    }


def onset_pitches(piece, encoding) -> np.ndarray:
    """A piece's pitches in the order they start (a chord low to high).

    Event and time-step pieces have one token per pitch, read directly; a
    chord token holds several, so those pieces are decoded.
    """
    piece = np.asarray(piece, dtype=np.int64)
    if encoding.name == "chord":
        notes = sorted(encoding.decode(piece.tolist()), key=lambda note: (note.start, note.pitch))
        return np.array([note.pitch for note in notes], dtype=np.int64)
    base = encoding.note_on_id(0)
    return piece[(piece >= base) & (piece < base + 128)] - base


def pitch_ngrams(pieces, encoding, n: int = 8) -> np.ndarray:
    """Unique int64 keys of every n-note pitch sequence (note-ons in order) within single pieces."""
    keys = []
    for piece in pieces:
        on = onset_pitches(piece, encoding)
        if len(on) < n:
            continue
        key = np.zeros(len(on) - n + 1, dtype=np.int64)
        for j in range(n):
            key = key * 128 + on[j : len(on) - n + 1 + j]
        keys.append(key)
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)


def copy_rate(pieces, encoding, train_keys: np.ndarray, n: int = 8) -> float:
    """Share of the pieces' n-note pitch sequences (counted with repeats) found in ``train_keys``."""
    found = total = 0
    for piece in pieces:
        keys = pitch_ngrams([piece], encoding, n)
        if keys.size == 0 or train_keys.size == 0:
            total += keys.size
            continue
        at = np.minimum(np.searchsorted(train_keys, keys), train_keys.size - 1)
        found += int((train_keys[at] == keys).sum())
        total += keys.size
    return found / total if total else float("nan")


def _mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def evaluate_genre(model, encoding, data: GenreData, config: EvalConfig, genre=None, ngram: dict | None = None) -> dict:
    """Every metric of one model on one genre's data (``genre``: weights for a conditional model)."""
    score = score_stream(model, data.valid, genre, max_tokens=config.max_valid_tokens)
    model_metrics = token_metrics(score.nll, score.targets, score.predictions)
    ngram = ngram or ngram_baseline(data, len(encoding), config, encoding.sep_id)
    samples = sample_pieces(model, encoding, config, genre)
    music = [music_metrics(encoding.decode(p)) for p in samples]
    train_keys = pitch_ngrams(split_pieces(data.train, encoding.sep_id), encoding, config.copy_n)
    valid_pieces = split_pieces(data.valid, encoding.sep_id)
    result = {
        "model_ce": model_metrics["ce"],
        "perplexity": model_metrics["perplexity"],
        "accuracy": model_metrics["accuracy"],
        "f1": model_metrics["f1"],
        **ngram,
        "ce_gain": 1 - model_metrics["ce"] / ngram["ngram_ce"],
        "valid_tokens": model_metrics["tokens"],
        "copy_rate": copy_rate(samples, encoding, train_keys, config.copy_n),
        "valid_copy_rate": copy_rate(valid_pieces, encoding, train_keys, config.copy_n),
        "sample_notes": _mean([float(len(encoding.decode(p))) for p in samples]),
    }
    for key in ("in_scale", "pc_entropy", "pitch_range", "notes_per_bar"):
        result[key] = _mean([float(m[key]) for m in music])
    spread = valid_pieces[:: max(1, len(valid_pieces) // config.samples)][: config.samples]  # across the corpus
    valid_music = [music_metrics(encoding.decode(p)) for p in spread]
    result["valid_in_scale"] = _mean([float(m["in_scale"]) for m in valid_music])
    result["valid_notes_per_bar"] = _mean([float(m["notes_per_bar"]) for m in valid_music])
    return result


def cached_ngram_baseline(data: GenreData, vocab: int, config: EvalConfig, sep_id: int) -> tuple[dict, bool]:
    """``ngram_baseline`` through the on-disk cache (rtgen.evaluate.cache); (figures, whether cached)."""
    from rtgen.evaluate.cache import baseline_key, cached_figures

    key = baseline_key(data.train, data.valid[: config.max_valid_tokens], vocab, config.max_order, sep_id)
    return cached_figures(key, lambda: ngram_baseline(data, vocab, config, sep_id))


def evaluate_models(
    names: list[str] | None = None,
    config: EvalConfig = EvalConfig(),
    device: str = "cpu",
    write: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Metrics for installed models (all, or ``names``); a conditional model gives one entry per genre.

    Each model's data is rebuilt from the training config in its meta.json
    (same corpus, split and seed), through the corpus cache; n-gram baselines
    come from their own cache when the same streams were scored before.
    ``write`` stores the results in each model's meta.json under
    ``metrics.eval``. ``progress`` gets a line per model and step, with counts
    and seconds.
    """
    from rtgen.nets.checkpoint import installed_models, read_meta, resolve, write_meta
    from rtgen.nets.vae import is_vae_meta

    chosen = names or [n for n, meta in installed_models() if not is_vae_meta(meta)]  # a VAE's row: `rtgen eval zoo`
    results: dict[str, dict] = {}
    for number, name in enumerate(chosen, 1):
        say = functools.partial(_say, progress, f"eval [{number}/{len(chosen)}] {name}")
        conditional, per_model = evaluate_model(name, config, device, say)
        results.update({f"{name}/{genre}" if conditional else name: m for genre, m in per_model.items()})
        if write:
            folder = resolve(name).parent
            meta = read_meta(folder / "model.safetensors")
            meta.setdefault("metrics", {})["eval"] = per_model
            write_meta(folder, meta)
    return results


def _say(progress: Callable[[str], None] | None, prefix: str, line: str) -> None:
    if progress is not None:
        progress(f"{prefix}: {line}")


def evaluate_model(name: str, config: EvalConfig, device: str, say: Callable[[str], None]) -> tuple[bool, dict]:
    """(whether the model is conditional, {genre: metrics}) for one installed model."""
    import dataclasses
    import time

    from rtgen.config import from_dict
    from rtgen.nets.checkpoint import load_model
    from rtgen.train.config import TrainConfig
    from rtgen.train.data import load_data

    started = time.monotonic()
    loaded = load_model(name, device)
    train_config = from_dict(TrainConfig, loaded.meta["train"], f"{name} meta.json train")
    if train_config.genres:  # the conditioning order is meta's "genres" list, whatever order JSON kept
        order = loaded.meta.get("genres", list(train_config.genres))
        train_config = dataclasses.replace(train_config, genres={g: train_config.genres[g] for g in order})
    encoding, data = load_data(dataclasses.replace(train_config, data_file=None), progress=True)
    tokens = sum(d.train.size for d in data)
    say(f"data: {len(data)} genre(s), {tokens:,} training tokens ({time.monotonic() - started:.1f} s)")
    conditional = loaded.model.config.genre_count > 0
    per_model = {}
    for index, genre_data in enumerate(data):
        started = time.monotonic()
        ngram, cached = cached_ngram_baseline(genre_data, len(encoding), config, encoding.sep_id)
        how = "from the cache" if cached else f"orders 1-{config.max_order} fitted"
        say(f"{genre_data.name} n-gram baseline {how} ({time.monotonic() - started:.1f} s)")
        started = time.monotonic()
        genre = [1.0 if i == index else 0.0 for i in range(len(data))] if conditional else None
        per_model[genre_data.name] = evaluate_genre(loaded.model, encoding, genre_data, config, genre, ngram)
        scored = per_model[genre_data.name]["valid_tokens"]
        say(
            f"{genre_data.name} model: {scored:,} tokens scored, {config.samples} pieces sampled "
            f"({time.monotonic() - started:.1f} s)"
        )
    return conditional, per_model
