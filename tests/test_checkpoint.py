"""Checkpoints: self-describing round trips, and refusal of pickles, damage and foreign vocabularies."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding
from rtgen.nets.checkpoint import (
    CheckpointError,
    installed_models,
    load_model,
    load_train_state,
    save_checkpoint,
    save_train_state,
)
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM


def tiny_model(vocab=338, genres=0):
    torch.manual_seed(0)
    return RecurrentLM(NetConfig(vocab_size=vocab, embedding_dim=8, hidden_sizes=(16,), genre_count=genres))


@pytest.fixture
def saved(tmp_path):
    model = tiny_model()
    save_checkpoint(tmp_path / "folk", model, EventEncoding(), {"genre": "folk", "metrics": {"valid_ce": 1.5}})
    return tmp_path / "folk", model


class RunsCode:
    """A pickle payload that WOULD run a shell command when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_gives_the_same_logits_and_meta(saved):
    folder, model = saved
    loaded = load_model(folder)
    tokens = torch.randint(0, 338, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(tokens)[0], model.eval()(tokens)[0])
    meta = loaded.meta
    assert meta["genre"] == "folk" and meta["metrics"]["valid_ce"] == 1.5
    assert meta["encoding"]["tokens"] == list(EventEncoding().tokens)
    assert meta["config"]["hidden_sizes"] == [16]
    for key in ("torch_version", "rtgen_version", "created", "parameters"):
        assert key in meta
    assert len(loaded.encoding) == 338 and not loaded.model.training


def test_shipped_models_load_by_genre_name(saved, monkeypatch):
    folder, _ = saved
    monkeypatch.setenv("RTGEN_MODELS", str(folder.parent))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(folder.parent / "no-shipped-models"))
    assert load_model("folk").meta["genre"] == "folk"
    assert [name for name, _ in installed_models()] == ["folk"]
    with pytest.raises(CheckpointError, match=r"no model named 'jazz' \(installed: folk\)"):
        load_model("jazz")


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path, saved):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weights": RunsCode(marker)}, protocol=2)
    (tmp_path / "model.pt").write_bytes(payload)
    with pytest.raises(CheckpointError, match="refusing a pickle"):
        load_model(tmp_path / "model.pt")
    folder, _ = saved
    (folder / "model.safetensors").write_bytes(payload)  # a pickle behind the safetensors name
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(folder)
    torch.save({"weights": RunsCode(marker)}, folder / "model.safetensors")  # torch.save's zip format
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(folder)
    assert not marker.exists()


def test_resume_state_loads_with_weights_only_and_refuses_code(tmp_path):
    save_train_state(tmp_path, {"epoch": 3, "weights": torch.ones(2), "history": [{"valid_ce": 1.0}]})
    state = load_train_state(tmp_path)
    assert state["epoch"] == 3 and torch.equal(state["weights"], torch.ones(2))
    marker = tmp_path / "pwned"
    (tmp_path / "train_state.pt").write_bytes(pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_train_state(tmp_path)
    assert not marker.exists()
    assert load_train_state(tmp_path / "empty") is None


def test_a_checkpoint_for_another_encoding_is_refused_with_why(saved):
    folder, _ = saved
    with pytest.raises(CheckpointError, match="encoding differs: name is 'event', expected 'timestep'"):
        load_model(folder, expect_encoding=TimeStepEncoding())
    with pytest.raises(CheckpointError, match="steps_per_beat is 12, expected 24"):
        load_model(folder, expect_encoding=EventEncoding(steps_per_beat=24))
    meta = json.loads((folder / "meta.json").read_text())
    meta["encoding"]["tokens"][5] = "ON_X"
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="vocabulary differs"):
        load_model(folder)


def test_a_truncated_file_is_refused_in_one_line(saved):
    folder, _ = saved
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    for cut in (len(data) - 100, 200, 5):
        weights.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated") as error:
            load_model(folder)
        assert "\n" not in str(error.value)


def test_missing_meta_and_missing_files_are_clear(saved, tmp_path):
    folder, _ = saved
    (folder / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="meta.json: missing"):
        load_model(folder)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nowhere" / "model.safetensors")


def test_weights_that_do_not_fit_the_config_are_refused(saved):
    folder, _ = saved
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["hidden_sizes"] = [32]
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit the config"):
        load_model(folder)


def test_rtgen_models_lists_installed_models_with_their_figures(saved, monkeypatch, capsys):
    from rtgen.cli import main

    folder, _ = saved
    monkeypatch.setenv("RTGEN_MODELS", str(folder.parent))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(folder.parent / "no-shipped-models"))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("folk (rnn 16, event encoding): ") and "valid CE 1.500" in out
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "folk" and listed[0]["valid_ce"] == 1.5


def test_the_shipped_models_load_stack_and_record_their_evaluation():
    from rtgen.nets.recurrent import StackedStepper
    from rtgen.paths import shipped_models_dir

    genres = ["folk", "fiddle", "chorale", "renaissance"]
    if not all((shipped_models_dir() / g / "model.safetensors").exists() for g in genres):
        pytest.skip("shipped models not installed")
    loaded = [load_model(g, expect_encoding=EventEncoding()) for g in genres]
    stepper = StackedStepper([m.model for m in loaded])
    assert stepper.stacked
    logits = stepper.prime([1, *EventEncoding().encode([])])
    assert torch.isfinite(logits).all() and logits.shape == (4, 338)
    for genre, model in zip(genres, loaded, strict=True):
        evaluated = model.meta["metrics"]["eval"][genre]
        assert evaluated["model_ce"] < 0.9 * evaluated["ngram_ce"], genre
    multi = load_model("multi")
    assert multi.meta["genres"] == genres and multi.model.config.genre_count == 4
