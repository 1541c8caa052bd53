"""The phrase VAE: training, checkpoints, refusals, variation, interpolation and the live answer."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import mido
import numpy as np
import pytest
import torch
from engine_models import restore_torch_threads  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.config import from_dict
from rtgen.daemon.wiring import DaemonEngine
from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding, Note
from rtgen.engine.controls import Controls
from rtgen.engine.variation import PhraseModel, VariationEngine, is_vae
from rtgen.engine.warm import Engine, EngineError
from rtgen.errors import RtgenError
from rtgen.live.clock import FakeClock
from rtgen.live.listener import Listener, ListenerConfig, Phrase
from rtgen.live.player import Player, PlayerConfig
from rtgen.nets.checkpoint import CheckpointError, LoadedModel, load_model, save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM
from rtgen.nets.vae import PhraseVAE, VaeConfig
from rtgen.train.config import TrainConfig, with_architecture
from rtgen.train.data import GenreData, join_pieces
from rtgen.train.loop import train
from rtgen.train.phrases import PhraseSet

ENC = TimeStepEncoding()
TINY = {"hidden_sizes": [96, 48], "latent_dim": 8, "dropout": 0.1}


def motif(seed: int) -> list[int]:
    """A two-bar phrase in time-step tokens: eighth and quarter notes of a seeded random walk."""
    rng = np.random.default_rng(seed)
    tokens, pitch = [], 60 + int(rng.integers(0, 12))
    while len(tokens) < 32:
        length = int(rng.choice([2, 4]))
        tokens += [ENC.pitch_base + pitch] + [ENC.hold_id] * (length - 1)
        pitch += int(rng.integers(-4, 5))
    return tokens[:32]


MOTIFS = [motif(seed) for seed in range(6)]


def corpus() -> GenreData:
    """Pieces of the motifs repeated, so a tiny VAE can learn them in seconds."""
    train_pieces = [np.array(MOTIFS[i % 6] + MOTIFS[(i + 1) % 6] * 2) for i in range(12)]
    valid_pieces = [np.array(MOTIFS[i] + MOTIFS[(i + 2) % 6]) for i in range(6)]
    return GenreData("tiny", join_pieces(train_pieces, ENC.sep_id), join_pieces(valid_pieces, ENC.sep_id))


def config(tmp_path, **changes) -> TrainConfig:
    table = {
        "genre": "tiny",
        "vae": TINY,
        "batch_size": 64,
        "steps_per_epoch": 100,
        "epochs": 4,
        "max_minutes": 5.0,
        "threads": 1,
        "device": "cpu",
        "out_dir": str(tmp_path / "vae"),
        **changes,
    }
    return from_dict(TrainConfig, with_architecture(table, "vae"), "test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE trained on the motifs: (checkpoint folder, its PhraseModel)."""
    torch.manual_seed(0)
    out = train(config(tmp_path_factory.mktemp("run")), progress=False, data=(ENC, [corpus()]))
    return out, PhraseModel(load_model(out, kind="vae"))


def notes_of(tokens: list[int]) -> list[Note]:
    return ENC.decode(tokens)


def onsets(notes) -> set[tuple[Fraction, int]]:
    return {(n.start, n.pitch) for n in notes}


def test_training_lowers_the_loss_and_writes_a_checkpoint_with_its_curve(trained):
    out, _ = trained
    meta = load_model(out, kind="vae").meta
    history = meta["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["valid_ce"] < history[0]["valid_ce"] < history[0]["train_ce"]
    assert history[-1]["valid_accuracy"] > history[0]["valid_accuracy"]
    assert meta["train"]["arch"] == "vae" and meta["config"]["family"] == "vae"
    assert meta["corpus"]["tiny"]["train_phrases"] > 0 and meta["metrics"]["stopped_by"] == "epochs"
    assert (out / "loss.png").stat().st_size > 0


def test_learning_rate_drops_tenfold_every_step_epochs(tmp_path):
    run = config(tmp_path, vae={**TINY, "lr_step_epochs": 1}, steps_per_epoch=2, epochs=3)
    out = train(run, progress=False, data=(ENC, [corpus()]))
    lrs = [h["lr"] for h in load_model(out, kind="vae").meta["history"]]
    assert lrs == pytest.approx([0.005, 0.0005, 0.00005])


def test_training_refuses_event_tokens(tmp_path):
    with pytest.raises(RtgenError, match="time-step phrases"):
        train(config(tmp_path), progress=False, data=(EventEncoding(), [corpus()]))


def test_phrases_cut_inside_a_held_note_begin_with_it_struck():
    stream = join_pieces([np.array([ENC.pitch_base + 60, ENC.hold_id, ENC.hold_id, ENC.rest_id, ENC.hold_id])], 1)
    rows = PhraseSet(stream, ENC, steps=2, hop=1).rows(torch.arange(4)).tolist()
    assert rows == [
        [ENC.pitch_base + 60, ENC.hold_id],
        [ENC.pitch_base + 60, ENC.hold_id],
        [ENC.pitch_base + 60, ENC.rest_id],
        [ENC.rest_id, ENC.hold_id],
    ]


def test_checkpoint_round_trip_rebuilds_the_same_vae(tmp_path):
    torch.manual_seed(3)
    model = PhraseVAE(VaeConfig(hidden_sizes=(32, 16), latent_dim=4)).eval()
    save_checkpoint(tmp_path / "v", model, ENC, {"genre": "v"})
    loaded = load_model(tmp_path / "v", kind="vae")
    assert loaded.model.config == model.config and is_vae(tmp_path / "v")
    phrases = torch.tensor([MOTIFS[0], MOTIFS[1]])
    z = torch.randn(2, 4)
    with torch.no_grad():
        assert torch.equal(loaded.model.encode(phrases)[0], model.encode(phrases)[0])
        assert torch.equal(loaded.model.decode(z), model.decode(z))
    mu, logvar = loaded.model.encode(phrases)
    assert mu.shape == logvar.shape == (2, 4) and loaded.model.decode(z).shape == (2, 32, len(ENC))


def test_a_token_model_is_refused_where_a_vae_is_needed_and_the_other_way(tmp_path, trained):
    vae_folder, _ = trained
    token = RecurrentLM(NetConfig(vocab_size=len(ENC), embedding_dim=4, hidden_sizes=(8,)))
    save_checkpoint(tmp_path / "lm", token, ENC, {"genre": "lm"})
    with pytest.raises(CheckpointError, match="a next-token model, where a phrase VAE is needed"):
        load_model(tmp_path / "lm", kind="vae")
    with pytest.raises(CheckpointError, match="a phrase VAE, where a next-token model is needed"):
        Engine.from_names([str(vae_folder)], device="cpu", conditional=None)
    with pytest.raises(CheckpointError, match="a next-token model, where a phrase VAE is needed"):
        VariationEngine.from_names([str(tmp_path / "lm")])
    with pytest.raises(EngineError, match="a vae plays alone"):
        VariationEngine.from_names([str(vae_folder), str(tmp_path / "lm")])
    assert not is_vae(tmp_path / "lm")


def test_variation_stays_near_the_call_at_low_spread(trained):
    _, phrases = trained
    generator = torch.Generator().manual_seed(0)
    shared = {0.1: 0, 2.0: 0}
    for tokens in MOTIFS:
        call = notes_of(tokens)
        for spread in shared:
            for _ in range(4):
                shared[spread] += len(onsets(call) & onsets(phrases.vary(call, spread, generator)))
    assert shared[0.1] > 1.5 * shared[2.0]


def test_interpolation_ends_decode_close_to_the_two_inputs(trained):
    _, phrases = trained
    first, last = notes_of(MOTIFS[0]), notes_of(MOTIFS[3])
    notes = phrases.interpolate(first, last, 4)
    assert max(n.start for n in notes) < 4 * phrases.beats
    opening, ending = phrases.chunks(notes)[0], phrases.chunks(notes)[-1]
    assert phrases.grid(opening) == phrases.decode(phrases.means(first))[0]
    assert len(onsets(opening) & onsets(first)) > len(onsets(opening) & onsets(last))
    assert len(onsets(ending) & onsets(last)) > len(onsets(ending) & onsets(first))
    with pytest.raises(RtgenError, match="at least 2"):
        phrases.interpolate(first, last, 1)


class Scheduled:
    """The output thread as the player sees it: what was scheduled, by time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, mido.Message]] = []

    def schedule(self, t: float, message: mido.Message) -> None:
        self.messages.append((t, message))

    def cancel_after(self, t: float) -> None:
        self.messages = [(when, m) for when, m in self.messages if when <= t]


def test_call_and_response_answers_a_call_with_a_variation_on_the_bar_grid(trained):
    _, phrases = trained
    clock = FakeClock(tempo_bpm=120.0)  # beat 0 now
    engine = VariationEngine("tiny", phrases, Controls(temperature=0.1), seed=0)
    assert isinstance(engine, DaemonEngine) and engine.keeps_bar_phase  # its answers keep the call's bar grid
    scheduler = Scheduled()
    listener = Listener(ListenerConfig(), ENC.steps_per_beat, clock.beat_at)
    player = Player(engine, clock, scheduler, listener, PlayerConfig(answer_bars=2), "call-and-response")
    call = notes_of(MOTIFS[2])
    player.on_phrase(Phrase(tuple(call), origin_beat=-8.0, end_beat=0.0), clock.now())
    while player.voice is not None:
        clock.advance(0.05)
        player.generate(clock.now())
    ons = [(clock.beat_at(t), m.note) for t, m in scheduler.messages if m.type == "note_on" and m.velocity]
    offs = [m for _, m in scheduler.messages if m.type == "note_off" or m.velocity == 0]
    assert ons and len(offs) == len(ons)
    assert all(4.0 <= beat < 12.0 for beat, _ in ons)  # from the next bar line (beat 4), for two bars
    answer = {(Fraction(beat - 4.0).limit_denominator(4), pitch) for beat, pitch in ons}
    assert len(answer & onsets(call)) >= len(call) // 2  # at spread 0.1, mostly the call's own notes
    assert player.answers == 1


def test_variation_engine_steps_phrases_of_the_call_in_turn_then_from_the_prior(trained, monkeypatch):
    _, phrases = trained
    # No noise in the latent: each variation is its phrase's mean, so the stream can be compared exactly.
    monkeypatch.setattr(torch, "randn", lambda size, generator=None: torch.zeros(size))
    engine = VariationEngine("tiny", phrases, Controls(temperature=0.01), seed=1)
    call = notes_of(MOTIFS[1]) + [Note(n.start + 8, n.pitch, n.duration) for n in notes_of(MOTIFS[4])]
    engine.prime(call)
    engine.feed([ENC.rest_id] * 5)  # ignored: a variation is of the call alone
    stream = [engine.step() for _ in range(96)]
    expected = phrases.decode(phrases.means(call))
    assert stream == expected[0] + expected[1] + expected[0]
    engine.reset()
    assert len([engine.step() for _ in range(40)]) == 40
    with pytest.raises(RtgenError):
        engine.set_controls(temperature=-1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 35), st.integers(1, 12), st.integers(40, 90)),
        max_size=12,
    )
)
def test_the_grid_holds_the_top_line_of_any_call(raw):
    phrases = PhraseModel(LoadedModel(PhraseVAE(VaeConfig(hidden_sizes=(4, 4), latent_dim=2)), ENC, {}))
    notes = [Note(Fraction(on, 4), pitch, Fraction(length, 4)) for on, length, pitch in raw]
    grid = phrases.grid(notes)
    assert len(grid) == 32
    got = notes_of(grid)
    for note in got:  # every note of the line is the highest pitch that starts at its step
        assert note.pitch == max(p for on, _, p in raw if Fraction(on, 4) == note.start)
    starts = {Fraction(on, 4) for on, _, _ in raw if on < 32}
    assert {n.start for n in got} == starts
    assert all(a.end <= b.start for a, b in pairwise(got))  # one line: no overlap
    assert all(n.end <= 8 for n in got)  # cut at the end of the two bars


def test_the_daemon_plays_a_chosen_vae_alone_and_never_picks_one_by_default(trained, tmp_path, monkeypatch):
    from rtgen.daemon.wiring import load_engine, shipped_genres

    vae_folder, _ = trained
    engine = load_engine([str(vae_folder)], "cpu", Controls(), seed=0)
    assert isinstance(engine, VariationEngine) and engine.encoding.steps_per_beat == 4
    models = tmp_path / "models"
    save_checkpoint(
        models / "lm", RecurrentLM(NetConfig(vocab_size=len(ENC), embedding_dim=4, hidden_sizes=(8,))), ENC, {}
    )
    save_checkpoint(models / "phrases", load_model(vae_folder, kind="vae").model, ENC, {"genre": "phrases"})
    monkeypatch.setenv("RTGEN_MODELS", str(models))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "none"))
    assert shipped_genres() == ["lm"]


def test_rtgen_eval_of_every_installed_model_passes_over_a_vae(trained, tmp_path, monkeypatch):
    from rtgen.evaluate import metrics

    vae_folder, _ = trained
    models = tmp_path / "models"
    save_checkpoint(
        models / "lm", RecurrentLM(NetConfig(vocab_size=len(ENC), embedding_dim=4, hidden_sizes=(8,))), ENC, {}
    )
    save_checkpoint(models / "phrases", load_model(vae_folder, kind="vae").model, ENC, {"genre": "phrases"})
    monkeypatch.setenv("RTGEN_MODELS", str(models))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "none"))
    scored = []
    monkeypatch.setattr(metrics, "evaluate_model", lambda name, *rest: scored.append(name) or (False, {}))
    metrics.evaluate_models()
    assert scored == ["lm"]  # a VAE predicts no next token; its figures are in `rtgen eval zoo`


def test_the_zoo_gives_a_vae_its_own_row(trained):
    from rtgen.evaluate.zoo import ZooConfig, format_table, run_zoo

    out, _ = trained
    (row,) = run_zoo([out], ZooConfig(step_count=50))
    meta = load_model(out, kind="vae").meta["metrics"]
    assert row["arch"] == "vae" and row["model_ce"] == meta["valid_bce"] and row["accuracy"] == meta["valid_accuracy"]
    assert 0 < row["step_p50_ms"] <= row["step_p99_ms"] and row["ngram_ce"] is None
    assert "| vae | " in format_table([row]) and "reconstruction BCE" in format_table([row])
    assert "- (-) / - / -" in format_table([row])  # no n-gram order for a vae


def test_bench_step_times_the_vae_by_its_variation_engine(monkeypatch):
    from rtgen.bench import step

    assert len(step.time_variation_steps(40)) == 40  # a random VAE steps behind the engine's interface
    monkeypatch.setattr(step, "time_variation_steps", lambda steps, device: [0.002] * steps)
    shipped, vae = step.arch_rows(["vae"], 20)
    assert vae["arch"] == "vae" and vae["p50_ms"] == vae["p99_ms"] == 2.0  # not a default RNN timed under its name
    assert shipped["arch"].startswith("shipped")
