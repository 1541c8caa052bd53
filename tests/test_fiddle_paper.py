"""The fiddle paper's table and its generation from rests, over tiny hand-made streams and tiny checkpoints."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from engine_models import restore_torch_threads  # noqa: F401

from rtgen.cli import generate_cmd, main
from rtgen.config import to_dict
from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding, Note
from rtgen.engine.controls import Controls
from rtgen.engine.offline import generate_notes, rest_tokens
from rtgen.engine.warm import Engine
from rtgen.errors import RtgenError
from rtgen.evaluate import fiddle_measure
from rtgen.evaluate.fiddle_measure import SILENCE
from rtgen.evaluate.fiddle_paper import (
    PAPER_ACCURACY,
    FiddleEvalConfig,
    accuracy,
    baseline_figures,
    fiddle_table,
    format_table,
    hold_accuracy,
)
from rtgen.nets.checkpoint import save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.ngram import KneserNey
from rtgen.nets.recurrent import RecurrentLM
from rtgen.train.config import CorpusSpec, TrainConfig
from rtgen.train.data import GenreData, join_pieces, save_prepared

ENC = TimeStepEncoding()


def _tune(rng: np.random.Generator, notes: int = 24) -> list[int]:
    """A monophonic line of sixteenths, eighths and quarters in C, as time-step tokens."""
    line, now = [], Fraction(0)
    for _ in range(notes):
        length = Fraction(int(rng.choice([1, 2, 2, 4])), 4)
        line.append(Note(now, int(rng.choice([60, 62, 64, 65, 67, 69, 71, 72])), length))
        now += length
    return ENC.encode(line)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """(prepared .npz, training stream, validation stream) of one genre "fiddle" in the time-step encoding."""
    rng = np.random.default_rng(0)
    train = join_pieces([np.array(_tune(rng)) for _ in range(60)], ENC.sep_id)
    valid = join_pieces([np.array(_tune(rng)) for _ in range(20)], ENC.sep_id)
    path = save_prepared(tmp_path_factory.mktemp("data") / "fiddle.npz", ENC, [GenreData("fiddle", train, valid)])
    return path, train, valid


def _hold_model(folder: Path, context: int) -> Path:
    """A checkpoint whose every prediction is the hold token, trained (as meta says) with ``context`` steps."""
    torch.manual_seed(0)
    model = RecurrentLM(NetConfig(vocab_size=len(ENC), embedding_dim=4, hidden_sizes=(8,), dropout=0.0))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-5.0)
        model.head.bias[ENC.hold_id] = 5.0
    train = TrainConfig(genre="fiddle", encoding="timestep", corpus=CorpusSpec("ryansMammoth"), seq_len=context)
    save_checkpoint(folder, model.eval(), ENC, {"genre": "fiddle", "train": to_dict(train)})
    return folder


def _melodic_model(folder: Path) -> Path:
    """A checkpoint that plays pitches 60-72 and holds, whatever it has heard (rests included)."""
    torch.manual_seed(1)
    model = RecurrentLM(NetConfig(vocab_size=len(ENC), embedding_dim=4, hidden_sizes=(8,), dropout=0.0))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-6.0)
        model.head.bias[ENC.note_on_id(60) : ENC.note_on_id(73)] = 2.0
        model.head.bias[ENC.hold_id] = 3.0
    train = TrainConfig(genre="fiddle", encoding="timestep", seq_len=64)
    save_checkpoint(folder, model.eval(), ENC, {"genre": "fiddle", "train": to_dict(train)})
    return folder


def test_hold_baseline_and_accuracies_on_a_hand_made_stream() -> None:
    quarters = ENC.encode([Note(Fraction(i), 60 + i, Fraction(1)) for i in range(8)])  # onset + 3 holds each
    assert hold_accuracy(np.array(quarters), ENC.hold_id) == 0.75
    eighths = ENC.encode([Note(Fraction(i, 2), 67, Fraction(1, 2)) for i in range(8)])
    assert hold_accuracy(np.array(eighths), ENC.hold_id) == 0.5
    targets = np.array(quarters)
    assert accuracy(targets, np.full(targets.size, ENC.hold_id)) == 0.75
    assert accuracy(targets, targets) == 1.0
    with pytest.raises(ValueError, match="targets for"):
        accuracy(targets, targets[1:])


def test_the_papers_measure_folds_pitches_to_one_octave_and_a_hold_to_what_sounds() -> None:
    line = [Note(Fraction(0), 60, Fraction(1, 2)), Note(Fraction(1), 74, Fraction(1, 4))]  # C4 eighth, rest, D5
    stream = np.array(ENC.encode(line))  # C _ rest rest D
    np.testing.assert_array_equal(fiddle_measure.sounding_classes(stream, ENC), [0, 0, SILENCE, SILENCE, 2])
    probabilities = np.zeros((3, len(ENC)))
    probabilities[0, [ENC.hold_id, ENC.note_on_id(62)]] = [0.4, 0.6]  # hold continues C: D wins
    probabilities[1, [ENC.hold_id, ENC.note_on_id(74), ENC.note_on_id(50)]] = [0.4, 0.3, 0.3]  # D4 + D5: D wins
    probabilities[2, [ENC.hold_id, ENC.rest_id, ENC.note_on_id(72)]] = [0.35, 0.3, 0.35]  # hold of C and C5: C
    before = np.array([0, 0, 0])
    np.testing.assert_array_equal(fiddle_measure.folded_predictions(probabilities, before, ENC), [2, 2, 0])
    assert fiddle_measure.continue_accuracy(stream, 1, ENC) == 0.5  # C->C right, C->rest wrong, rest->rest, rest->D


def test_baselines_score_exactly_the_tokens_after_the_context() -> None:
    valid = np.array(ENC.encode([Note(Fraction(i), 60 + i % 5, Fraction(1)) for i in range(40)]))  # 160 tokens
    perfect = valid[1:]  # n-gram prediction i is for token i + 1
    off_by_one = valid[:-1]  # predicts the token it just saw: right only on hold after hold
    figures = baseline_figures(valid, 64, {1: off_by_one, 2: perfect, 3: perfect}, ENC.hold_id)
    assert figures["tokens"] == 160 - 64
    assert figures["hold_accuracy"] == 0.75
    assert figures["ngram_accuracy_by_order"]["2"] == 1.0 and figures["ngram_order"] == 2  # ties: the lowest order
    expected = float((valid[64:] == valid[63:-1]).mean())
    assert figures["ngram_accuracy_by_order"]["1"] == pytest.approx(expected) == 0.5


def test_ngram_order_8_sees_seven_tokens_back_over_the_time_step_vocabulary() -> None:
    # Which of two tokens ends a phrase is decided by its first token, seven steps back: only order 8 knows.
    a, b, c, d, x = ENC.note_on_id(60), ENC.note_on_id(62), ENC.note_on_id(64), ENC.note_on_id(65), ENC.hold_id
    rng = np.random.default_rng(2)
    phrases = [[a, *[x] * 6, b] if rng.random() < 0.5 else [c, *[x] * 6, d] for _ in range(400)]
    stream = np.array([t for p in phrases for t in p])
    assert len(ENC) ** 9 > 2**63  # 9-gram keys would overflow: the fit must not build them
    model = KneserNey(len(ENC), 8, pad_id=ENC.sep_id).fit([stream[:2400]])
    test = stream[2400:]
    scores = model.score(test)
    ends = np.flatnonzero(np.isin(test[1:], [b, d]))  # positions of the phrase-final tokens among the targets
    assert (scores[8][1][ends] == test[1:][ends]).all()
    assert (scores[7][1][ends] == test[1:][ends]).mean() < 0.8
    history = np.lib.stride_tricks.sliding_window_view(test, 7)[:50]
    np.testing.assert_allclose(model.distributions(history, 8).sum(axis=1), 1.0, atol=1e-9)


def test_table_json_and_text_for_trained_models(prepared, tmp_path) -> None:
    data, _, valid = prepared
    folders = [str(_hold_model(tmp_path / f"m{c}", c)) for c in (64, 128, 256)]
    report = fiddle_table(FiddleEvalConfig(models=tuple(folders), data_file=str(data), max_order=4))
    assert [row["context"] for row in report["rows"]] == [64, 128, 256]
    assert json.loads(json.dumps(report)) == report
    for row in report["rows"]:
        c = row["context"]
        assert row["trained"] and row["tokens"] == valid.size - c
        assert row["paper_accuracy"] == PAPER_ACCURACY[c]
        assert row["hold_accuracy"] == pytest.approx(float((valid[c:] == ENC.hold_id).mean()))
        assert row["accuracy"] == pytest.approx(row["hold_accuracy"])  # the model always says hold
        assert 0 < row["hold_accuracy"] < 1 and row["cross_entropy"] > 0
        assert set(row["ngram_accuracy_by_order"]) == {"1", "2", "3", "4"}
        assert row["ngram_accuracy"] == max(row["ngram_accuracy_by_order"].values())
        paper = row["paper_measure"]  # always "hold" is, in the paper's measure, always "what sounds goes on"
        assert paper["accuracy"] == pytest.approx(paper["continue_accuracy"]) and paper["ngram_order"] in range(1, 5)
        assert paper["continue_accuracy"] >= row["hold_accuracy"] and paper["ngram_accuracy"] >= row["ngram_accuracy"]
    text = format_table(report)
    assert all(figure in text for figure in ("45.0 %", "47.5 %", "43.0 %"))
    first = text.splitlines()[2].split()
    assert first[0] == "64" and first[1] == f"{100 * report['rows'][0]['accuracy']:.1f}"


def test_missing_default_models_print_the_command_that_trains_them(prepared, tmp_path, monkeypatch) -> None:
    data, _, _ = prepared
    zoo = tmp_path / "shipped" / "configs" / "zoo"
    zoo.mkdir(parents=True)
    for c in (64, 128, 256):
        (zoo / f"fiddle-timestep-{c}.toml").write_text(
            f'genre = "fiddle"\nencoding = "timestep"\nseq_len = {c}\nout_dir = "{tmp_path / f"run{c}"}"\n'
        )
    _hold_model(tmp_path / "run128", 128)
    _hold_model(tmp_path / "shipped" / "zoo" / "run256", 256)  # not trained here, but shipped in models/zoo/
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "shipped"))
    rows = fiddle_table(FiddleEvalConfig(data_file=str(data), max_order=2))["rows"]
    assert [(row["context"], row["trained"]) for row in rows] == [(64, False), (128, True), (256, True)]
    assert rows[2]["model"] == str(tmp_path / "shipped" / "zoo" / "run256")
    assert rows[0]["train_command"] == f"rtgen train --config {(zoo / 'fiddle-timestep-64.toml').resolve()}"
    assert "accuracy" not in rows[0] and rows[0]["hold_accuracy"] > 0 and rows[0]["ngram_order"] in (1, 2)
    assert "not trained: rtgen train --config" in format_table({"rows": rows, "max_order": 2})


def test_cli_prints_the_table_and_names_the_training_command_for_a_missing_folder(prepared, tmp_path, capsys) -> None:
    data, _, _ = prepared
    model = _hold_model(tmp_path / "m64", 64)
    argv = ["eval", "fiddle", "--models", str(model), "--data", str(data), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"][0]["context"] == 64
    assert "fiddle: n-grams 1-8" in captured.err
    assert main(["eval", "fiddle", "--models", str(tmp_path / "nothing"), "--data", str(data)]) == 2
    assert "no trained model; train one with: rtgen train --config" in capsys.readouterr().err


def test_a_model_of_another_encoding_is_refused(prepared, tmp_path) -> None:
    encoding = EventEncoding()
    model = RecurrentLM(NetConfig(vocab_size=len(encoding), embedding_dim=4, hidden_sizes=(8,)))
    save_checkpoint(tmp_path / "event", model, encoding, {"genre": "x", "train": to_dict(TrainConfig())})
    with pytest.raises(RtgenError, match="needs timestep models"):
        fiddle_table(FiddleEvalConfig(models=(str(tmp_path / "event"),), data_file=str(prepared[0])))


def test_eight_bars_from_rests_play_notes(tmp_path) -> None:
    folder = str(_melodic_model(tmp_path / "melodic"))
    engine = Engine.from_names([folder], "cpu", Controls(weights={folder: 1.0}), conditional=None, seed=3)
    fed = []
    feed = engine.feed
    engine.feed = lambda tokens, **kw: (fed.append(list(tokens)), feed(tokens, **kw))[1]
    notes = generate_notes(engine, [], bars=8, seed=3, rest_steps=64)
    assert fed == [[ENC.rest_id] * 64]
    assert len(notes) >= 8 and all(0 <= n.start < 32 and n.end <= 32 for n in notes)
    assert {n.pitch for n in notes} <= set(range(60, 73))
    with pytest.raises(RtgenError, match="needs a timestep-encoding model"):
        rest_tokens(EventEncoding(), 4)


def test_generate_from_rests_writes_eight_bars_and_reads_the_window_from_meta(tmp_path, capsys) -> None:
    folder = str(_melodic_model(tmp_path / "melodic"))
    parser = argparse.ArgumentParser()
    generate_cmd.register(parser.add_subparsers())
    out = tmp_path / "x.mid"
    args = parser.parse_args(["generate", "--genres", folder, "--from-rests", "--bars", "8", "-o", str(out)])
    assert generate_cmd.rest_steps(args, generate_cmd.build_preset(args)) == 64
    assert args.handler(args) == 0
    assert "8 bars" in capsys.readouterr().out
    midi = mido.MidiFile(str(out))
    ons = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert ons and midi.length > 0
    given = parser.parse_args(["generate", "--genres", folder, "--from-rests", "16", "-o", str(out)])
    assert generate_cmd.rest_steps(given, generate_cmd.build_preset(given)) == 16
