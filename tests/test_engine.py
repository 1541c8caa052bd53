"""The engine over tiny real checkpoints: fused steps, masks, determinism, live controls from another thread."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from engine_models import GENRES, make_models, restore_torch_threads  # noqa: F401
from fusion_reference import reference_fuse as fuse

from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding, Note
from rtgen.engine.controls import ControlError, Controls
from rtgen.engine.warm import Engine, EngineError

pytestmark = pytest.mark.usefixtures("with_tiny_models")


def _engine(seed: int = 0, **controls) -> Engine:
    return Engine.from_names(list(GENRES), device="cpu", settings=Controls(**controls), seed=seed)


def _decode(tokens: list[int]) -> list[Note]:
    return EventEncoding().decode(tokens)


def test_the_engine_offers_what_the_daemon_and_the_engine_thread_ask() -> None:
    from rtgen.daemon.wiring import DaemonEngine

    engine = _engine()
    assert isinstance(engine, DaemonEngine) and not engine.keeps_bar_phase and engine.genres == GENRES


def test_steps_return_valid_tokens_and_never_pad_or_sep() -> None:
    engine = _engine(weights={"folk": 10, "fiddle": 5, "chorale": 1})
    engine.prime([Note(Fraction(0), 62, Fraction(1)), Note(Fraction(1), 64, Fraction(1))])
    tokens = [engine.step() for _ in range(300)]
    assert all(2 <= t < len(engine.encoding) for t in tokens)
    assert _decode(tokens), "a random model biased towards notes still plays notes"


def test_same_seed_same_tokens_and_another_seed_differs() -> None:
    first = [_engine(seed=5).step() for _ in range(1)]
    runs = []
    for seed in (5, 5, 6):
        engine = _engine(seed=seed)
        runs.append([engine.step() for _ in range(200)])
    assert runs[0] == runs[1] != runs[2] and first[0] == runs[0][0]


@pytest.mark.parametrize("method", ["mixture", "product", "conditional"])
def test_step_uses_the_fused_distribution_of_the_current_logits(method) -> None:
    engine = _engine(weights={"folk": 3, "fiddle": 1}, method=method, temperature=0.8)
    seen = []
    engine.on_step = lambda controls, lp: seen.append(lp)
    engine.step()
    logits = (engine._conditional if method == "conditional" else engine._stepper).logits.clone()
    engine.step()
    expected = fuse(logits, torch.tensor([3.0, 1.0, 0.0]), method, 0.8)
    finite = torch.isfinite(seen[1])
    assert finite.sum() > 100
    assert torch.allclose(seen[1][finite], expected[finite], atol=1e-5)


def test_masks_hold_polyphony_note_length_range_and_scale() -> None:
    engine = _engine(max_polyphony=1, max_note_beats=0.5, pitch_min=60, pitch_max=72, scale_lock=True, key="D minor")
    tokens = [engine.step() for _ in range(600)]
    notes = _decode(tokens)
    assert len(notes) > 20
    assert all(60 <= n.pitch <= 72 and n.pitch % 12 in (2, 4, 5, 7, 9, 10, 0, 1) for n in notes)
    assert all(n.duration <= Fraction(1, 2) for n in notes)
    ends = sorted((n.start, n.end) for n in notes)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ends, ends[1:], strict=False))
    assert engine.key == "D minor"


def test_auto_key_follows_the_primed_phrase() -> None:
    engine = _engine(scale_lock=True, key="auto")
    phrase = [Note(Fraction(i, 2), p, Fraction(1, 2)) for i, p in enumerate([64, 66, 68, 69, 71, 73, 75, 76, 71, 64])]
    engine.prime(phrase)
    notes = _decode([engine.step() for _ in range(400)])
    assert engine.key == "E major"
    assert notes and all(n.pitch % 12 in (4, 6, 8, 9, 11, 1, 3) for n in notes)


def test_controls_set_between_steps_apply_from_the_next_step() -> None:
    """The engine thread applies commands between steps (rtgen.daemon.commands): the next step uses them."""
    engine = _engine(weights={"folk": 1, "fiddle": 1, "chorale": 1}, temperature=1.0)
    seen: list[tuple[Controls, torch.Tensor, torch.Tensor]] = []
    engine.on_step = lambda controls, lp: seen.append((controls, lp, engine._stepper.logits.clone()))
    for _ in range(100):
        engine.step()
    new = engine.set_controls(weights={"folk": 0, "fiddle": 7, "chorale": 1}, temperature=0.4)
    engine.step()
    controls, log_probs, logits = seen[-1]
    assert controls is new and all(c is not new for c, _, _ in seen[:-1])
    expected = fuse(logits, torch.tensor([0.0, 7.0, 1.0]), "mixture", 0.4)
    finite = torch.isfinite(log_probs)
    assert torch.allclose(log_probs[finite], expected[finite], atol=1e-5)
    assert engine.controls is new


def test_bad_controls_raise_naming_the_control() -> None:
    engine = _engine()
    with pytest.raises(ControlError, match="temperature"):
        engine.set_controls(temperature=0)
    with pytest.raises(ControlError, match="'jazz'"):
        engine.set_controls(weights={"jazz": 1})
    with pytest.raises(ControlError, match="all genre weights are zero"):
        engine.set_controls(weights={"folk": 0, "fiddle": 0.0})
    assert engine.controls.temperature == 1.0
    no_multi = Engine.from_names(["folk"], device="cpu", conditional=None)
    with pytest.raises(ControlError, match="multi-genre model"):
        no_multi.set_controls(method="conditional")


def test_models_with_another_vocabulary_are_refused_by_name(tmp_path) -> None:
    from rtgen.nets.checkpoint import save_checkpoint
    from rtgen.nets.config import NetConfig
    from rtgen.nets.recurrent import RecurrentLM

    encoding = TimeStepEncoding()
    save_checkpoint(tmp_path / "odd", RecurrentLM(NetConfig(vocab_size=len(encoding))), encoding, {"genre": "odd"})
    with pytest.raises(EngineError, match="model 'odd' cannot play with 'folk'"):
        Engine.from_names(["folk", str(tmp_path / "odd")], device="cpu", conditional=None)


def test_reset_and_feed_track_the_stream() -> None:
    engine = _engine()
    enc = engine.encoding
    engine.feed([enc.note_on_id(60), enc.shift_base + 11])
    assert engine.sounding == {60} and engine.beat == 1
    engine.reset()
    assert engine.sounding == frozenset() and engine.beat == 0


def test_conditional_model_alone_plays_and_refuses_other_methods() -> None:
    settings = Controls(weights={"fiddle": 1.0, "chorale": 2.0}, method="conditional")
    engine = Engine.from_names([], "cpu", settings, conditional="multi", seed=0)
    assert engine.genres == () and engine.conditional_genres == GENRES
    assert all(2 <= engine.step() < len(engine.encoding) for _ in range(50))
    with pytest.raises(ControlError, match="needs genre models"):
        engine.set_controls(method="mixture")


def _reference(name: str, tokens: list[int], genre=None) -> torch.Tensor:
    """Logits of a fresh stepper of the named model after ``tokens`` (sequence forward from zero state)."""
    from rtgen.nets.checkpoint import load_model
    from rtgen.nets.recurrent import StackedStepper

    stepper = StackedStepper([load_model(name).model])
    if genre is not None:
        stepper.set_genre(genre)
    return stepper.prime(tokens)[0].clone()


def test_only_the_method_s_models_advance_and_a_switch_replays_what_the_idle_one_missed() -> None:
    engine = _engine(weights={"folk": 2, "fiddle": 1, "chorale": 1})
    enc = engine.encoding
    phrase = [Note(Fraction(0), 62, Fraction(1)), Note(Fraction(1), 64, Fraction(1))]
    engine.prime(phrase)
    stream = [enc.sep_id, *enc.encode(phrase)]
    idle = engine._conditional.logits.clone()
    stream += [engine.step() for _ in range(40)]
    assert torch.equal(engine._conditional.logits, idle), "the conditional model sat idle"
    engine.feed([enc.shift_base + 3])
    stream.append(enc.shift_base + 3)
    engine.set_controls(method="conditional")
    stream.append(engine.step())
    assert engine.last_switch_ms > 0
    genre = engine.controls.normalised_weights(engine.conditional_genres)
    torch.testing.assert_close(engine._conditional.logits[0], _reference("multi", stream, genre), atol=1e-5, rtol=0)
    folk = engine._stepper.logits[0].clone()
    stream += [engine.step() for _ in range(10)]
    assert torch.equal(engine._stepper.logits[0], folk), "the genre models sat idle"
    engine.set_controls(method="product")
    stream.append(engine.step())
    torch.testing.assert_close(engine._stepper.logits[0], _reference("folk", stream), atol=1e-5, rtol=0)


def test_a_switch_after_more_than_the_history_warms_up_on_the_last_tokens() -> None:
    from rtgen.engine.warm import HISTORY_TOKENS

    engine = _engine(seed=3)
    stream = [engine.step() for _ in range(HISTORY_TOKENS + 50)]
    engine.set_controls(method="conditional", weights={"folk": 1, "fiddle": 0, "chorale": 0})
    stream.append(engine.step())
    genre = (1.0, 0.0, 0.0)
    warm = _reference("multi", stream[-HISTORY_TOKENS - 1 :], genre)
    torch.testing.assert_close(engine._conditional.logits[0], warm, atol=1e-5, rtol=0)
    engine.reset()
    engine.set_controls(method="mixture")
    token = engine.step()
    torch.testing.assert_close(engine._stepper.logits[1], _reference("fiddle", [token]), atol=1e-5, rtol=0)
