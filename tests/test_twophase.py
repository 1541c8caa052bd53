"""The fusion paper's two-phase model: steps as it forwards, trains so the weights steer, round-trips, fuses."""

from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from engine_models import GENRES, make_models, restore_torch_threads  # noqa: F401
from test_train import ENCODING, tiny_config

from rtgen.cli import generate_cmd
from rtgen.encoding import Note
from rtgen.engine.controls import ControlError, Controls
from rtgen.engine.warm import Engine, EngineError
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import load_model, save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.twophase import TWO_PHASE_MODEL, TwoPhaseLM
from rtgen.train.config import parse_genres
from rtgen.train.data import GenreData, join_pieces, score_stream
from rtgen.train.loop import train
from rtgen.train.twophase import ONE_HOT_SHARE, steering_weights


def tiny(weighting: str = "output") -> TwoPhaseLM:
    """Random weights over the event vocabulary and three genres."""
    torch.manual_seed(0)
    config = NetConfig(
        vocab_size=len(ENCODING),
        family="two-phase",
        hidden_sizes=(12, 16),
        dense_sizes=(8, 10),
        genre_count=3,
        weighting=weighting,
    )
    return TwoPhaseLM(config).eval()


def genre_in_register(name: str, low: int, beats: Fraction, seed: int) -> GenreData:
    """Pieces of 16 notes drawn from five pitches above ``low``, each ``beats`` long: two such genres differ plainly."""
    rng = np.random.default_rng(seed)

    def piece() -> np.ndarray:
        notes = [Note(i * beats, low + int(rng.integers(0, 5)), beats) for i in range(16)]
        return np.array(ENCODING.encode(notes), dtype=np.int16)

    train_pieces, valid_pieces = [piece() for _ in range(30)], [piece() for _ in range(4)]
    return GenreData(name, join_pieces(train_pieces, 1), join_pieces(valid_pieces, 1), {"source": f"toy-{name}"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny two-phase run over a low, slow genre and a high, fast one (about a second on the 2-core CPU).

    ``test_train.toy_genre``'s scale runs of steps 1 and 2 differ too little for a run this short to tell apart.
    """
    out = tmp_path_factory.mktemp("twophase") / TWO_PHASE_MODEL
    config = tiny_config(out.parent, genres=parse_genres("low=a,high=b"), arch="two-phase", steps_per_epoch=30)
    net = NetConfig(family="two-phase", hidden_sizes=(24, 32), dense_sizes=(16, 24), genre_count=2, dropout=0.0)
    config = dataclasses.replace(config, net=net, out_dir=str(out))
    low, high = genre_in_register("low", 48, Fraction(1), 0), genre_in_register("high", 76, Fraction(1, 4), 1)
    return train(config, progress=False, data=(ENCODING, [low, high]))


@pytest.mark.parametrize("weighting", ["output", "input"])
def test_step_gives_what_forward_gives_and_chunks_carry_state(weighting) -> None:
    model, weights = tiny(weighting), torch.tensor([5.0, 1.0, 0.0])
    tokens = torch.randint(2, len(ENCODING), (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = model(tokens, None, weights)
        first, state = model(tokens[:, :5], None, weights)
        rest, _ = model(tokens[:, 5:], state, weights)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=0)
    state = model.initial_state(2)
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state, weights)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)
    with torch.no_grad():
        other, _ = model(tokens, None, torch.tensor([0.0, 0.0, 1.0]))
    assert not torch.allclose(other, full), "the weights reach the output"


def test_the_papers_weighting_mixes_the_per_genre_outputs_by_the_weights() -> None:
    model = tiny("output")
    tokens = torch.randint(2, len(ENCODING), (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        alone = [torch.softmax(model(tokens, None, torch.eye(3)[g])[0], dim=-1) for g in range(3)]
        blend = torch.softmax(model(tokens, None, torch.tensor([3.0, 1.0, 0.0]))[0], dim=-1)
    torch.testing.assert_close(blend, 0.75 * alone[0] + 0.25 * alone[1], atol=1e-5, rtol=0)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="two-phase needs"):
        NetConfig(family="two-phase", hidden_sizes=(8, 8, 8), dense_sizes=(4, 4), genre_count=2)
    with pytest.raises(ValueError, match="genre_count >= 1"):
        NetConfig(family="two-phase", hidden_sizes=(8, 8), dense_sizes=(4, 4))
    with pytest.raises(ValueError, match="weighting"):
        NetConfig(family="two-phase", hidden_sizes=(8, 8), dense_sizes=(4, 4), genre_count=2, weighting="both")
    with pytest.raises(RtgenError, match="expected 3 genre weights"):
        tiny()(torch.ones(1, 4, dtype=torch.long), None, torch.ones(2))


def test_steering_weights_are_own_genre_or_a_blend_leaning_to_it() -> None:
    genre = torch.arange(4000) % 2
    weights = steering_weights(genre, 2, np.random.default_rng(0))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4000))
    own = weights[torch.arange(4000), genre]
    assert abs(float((own == 1).float().mean()) - ONE_HOT_SHARE) < 0.03
    blends = own[own < 1]
    assert abs(float(blends.mean()) - 2 / 3) < 0.02, "Dirichlet(1 + one-hot) gives the drawn genre 2/3 on average"


def test_trained_weights_steer_and_the_checkpoint_says_so(trained) -> None:
    loaded = load_model(trained)
    model, meta = loaded.model, loaded.meta
    assert isinstance(model, TwoPhaseLM) and meta["genres"] == ["low", "high"] and meta["train"]["arch"] == "two-phase"
    assert set(meta["phase_one_history"]) == set(meta["metrics"]["phase_one_valid_ce"]) == {"low", "high"}
    data = [genre_in_register("low", 48, Fraction(1), 0), genre_in_register("high", 76, Fraction(1, 4), 1)]
    for index, genre in enumerate(data):
        own = score_stream(model, genre.valid, [float(index == 0), float(index == 1)]).cross_entropy
        other = score_stream(model, genre.valid, [float(index == 1), float(index == 0)]).cross_entropy
        assert own < other - 0.3, f"{genre.name}: own weight {own:.3f}, the other genre's {other:.3f} nats/token"
    steering = meta["metrics"]["steering"]["mean"]
    assert steering["own"] < steering["uniform"] < steering["other"]
    assert meta["metrics"]["valid_ce"] == pytest.approx(min(h["valid_ce"] for h in meta["history"]))


def test_checkpoint_round_trip(tmp_path) -> None:
    model = tiny()
    save_checkpoint(tmp_path / "tp", model, ENCODING, {"genre": "tp", "genres": list(GENRES)})
    loaded = load_model(tmp_path / "tp")
    tokens = torch.randint(2, len(ENCODING), (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.model(tokens, None, [1.0, 2.0, 3.0])[0], model(tokens, None, [1.0, 2.0, 3.0])[0]
        )
    assert loaded.model.config == model.config


def test_training_needs_genres_and_does_not_resume(tmp_path) -> None:
    config = tiny_config(tmp_path, arch="two-phase")
    config = dataclasses.replace(config, net=tiny().config)
    with pytest.raises(RtgenError, match="needs --genres"):
        train(config, progress=False)
    with pytest.raises(RtgenError, match="does not resume"):
        train(dataclasses.replace(config, genres=parse_genres("a=x,b=y")), resume=True, progress=False)


@pytest.fixture
def models_with_two_phase(tmp_path, monkeypatch) -> Path:
    """Tiny genre models, ``multi`` and a random ``two-phase`` over the same genres, as the installed models."""
    folder = make_models(tmp_path)
    save_checkpoint(folder / TWO_PHASE_MODEL, tiny(), ENCODING, {"genre": TWO_PHASE_MODEL, "genres": list(GENRES)})
    monkeypatch.setenv("RTGEN_MODELS", str(folder))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "no-shipped-models"))
    return folder


def test_engine_plays_the_two_phase_method_from_its_model(models_with_two_phase) -> None:
    engine = Engine.from_names(list(GENRES), "cpu", Controls(weights={"folk": 1.0}), seed=0)
    assert engine.twophase_genres == GENRES
    for _ in range(20):
        engine.step()
    engine.set_controls(method="two-phase", weights={"folk": 3.0, "fiddle": 1.0})
    seen = []
    engine.on_step = lambda controls, log_probs: seen.append(log_probs)
    engine.step()
    tokens = torch.tensor([engine._history[: engine._written].tolist()])
    with torch.no_grad():
        logits, _ = load_model(models_with_two_phase / TWO_PHASE_MODEL).model(tokens[:, :-1], None, [3.0, 1.0, 0.0])
    torch.testing.assert_close(seen[0], torch.log_softmax(logits[0, -1], dim=0), atol=1e-5, rtol=0)
    without = Engine.from_names(["folk"], "cpu", twophase=None)
    with pytest.raises(ControlError, match="needs the two-phase model"):
        without.set_controls(method="two-phase")


def test_a_genre_model_on_another_vocabulary_plays_without_the_installed_event_models(models_with_two_phase) -> None:
    from rtgen.data.timestep import TimeStepEncoding
    from rtgen.nets.recurrent import RecurrentLM

    steps = TimeStepEncoding()
    model = RecurrentLM(NetConfig(vocab_size=len(steps), embedding_dim=8, hidden_sizes=(12,)))
    save_checkpoint(models_with_two_phase / "reels", model.eval(), steps, {"genre": "reels"})
    engine = Engine.from_names(["reels"], "cpu", seed=0)  # "auto" passes over multi and two-phase (event tokens)
    assert engine.conditional_genres == () and engine.twophase_genres == ()
    assert 0 <= engine.step() < len(steps)
    with pytest.raises(EngineError, match="model 'two-phase' cannot play with 'reels': encoding differs"):
        Engine.from_names(["reels"], "cpu", conditional=None, twophase=TWO_PHASE_MODEL)  # named: still refused


def _generate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    generate_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["generate", *argv])
    return args.handler(args)


def test_generate_plays_the_method_or_names_the_missing_model(models_with_two_phase, tmp_path) -> None:
    out = tmp_path / "tp.mid"
    assert _generate(["--genres", "folk=1,fiddle=2", "--method", "two-phase", "--bars", "2", "-o", str(out)]) == 0
    assert mido.MidiFile(str(out)).length > 0
    (models_with_two_phase / TWO_PHASE_MODEL / "meta.json").rename(tmp_path / "meta.json")
    (models_with_two_phase / TWO_PHASE_MODEL / "model.safetensors").rename(tmp_path / "model.safetensors")
    with pytest.raises(EngineError, match="method 'two-phase' needs the two-phase model .*; none is installed"):
        _generate(["--genres", "folk=1", "--method", "two-phase", "-o", str(out)])


def test_fidelity_runs_the_two_phase_method(models_with_two_phase) -> None:
    from rtgen.engine.offline import generate_notes
    from rtgen.evaluate.fidelity import run_fidelity
    from rtgen.nets.classifier import GenreClassifier

    engine = Engine.from_names(list(GENRES), "cpu", Controls(), conditional=None, twophase=None)
    training = {}
    for genre in GENRES:
        engine.set_controls(weights={genre: 1.0})
        training[genre] = [generate_notes(engine, [], 2, seed=100 + i) for i in range(4)]
    report = run_fidelity(GenreClassifier.fit(training), ["two-phase"], pieces=2, bars=2)
    result = report["methods"]["two-phase"]
    assert set(result["single"]) == set(GENRES)
    (sweep,) = result["sweeps"]
    assert len(sweep["share"]) == 5 and all(0.0 <= s <= 1.0 for s in sweep["share"])
