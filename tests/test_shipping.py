"""Shipping a zoo checkpoint: float16 on disk where the step allows, float32 once loaded, found by name."""

from __future__ import annotations

import argparse
import json

import torch
from safetensors.torch import load_file

from rtgen.cli import models_cmd
from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding
from rtgen.nets.checkpoint import WEIGHTS, find_model, installed_folders, load_model, save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM
from rtgen.nets.shipping import half_drift, ship
from rtgen.nets.windowed import WINDOW_MODELS
from rtgen.train.config import TIME_CAP


def trained_run(tmp_path, name="bilstm2-fiddle", encoding=None, config=None, stopped_by="epochs"):
    """A run folder as `rtgen train` leaves it (random weights), with its metrics."""
    encoding = encoding or TimeStepEncoding()
    torch.manual_seed(0)
    config = config or NetConfig(
        vocab_size=len(encoding), embedding_dim=8, hidden_sizes=(16, 16), family="bilstm2", window=8
    )
    model = WINDOW_MODELS[config.family](config) if config.windowed else RecurrentLM(config)
    meta = {"genre": name, "metrics": {"valid_ce": 2.5, "epochs": 3, "stopped_by": stopped_by}}
    save_checkpoint(tmp_path / "runs" / name, model, encoding, meta)
    return tmp_path / "runs" / name, model.eval()


def test_a_float16_checkpoint_loads_as_float32_and_steps_as_the_trained_one(tmp_path) -> None:
    run, model = trained_run(tmp_path)
    done = ship(run, tmp_path / "zoo" / run.name)
    assert done["weights_dtype"] == "float16" and done["half_drift"] < 0.02
    stored = load_file(str(tmp_path / "zoo" / run.name / WEIGHTS))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    loaded = load_model(tmp_path / "zoo" / run.name)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    tokens = torch.randint(1, len(loaded.encoding), (1, 20), generator=torch.Generator().manual_seed(1))
    state, shipped_state = model.initial_state(1), loaded.model.initial_state(1)
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state)
        shipped, shipped_state = loaded.model.step(tokens[:, t], shipped_state)
        torch.testing.assert_close(shipped, logits, atol=0.02, rtol=0)
    assert loaded.meta["shipped"]["weights_dtype"] == "float16" and loaded.meta["metrics"]["valid_ce"] == 2.5


def test_a_checkpoint_is_halved_in_place(tmp_path) -> None:
    run, _ = trained_run(tmp_path)
    (run / "loss.png").write_bytes(b"png")
    assert ship(run, run)["weights_dtype"] == "float16"
    assert {t.dtype for t in load_file(str(run / WEIGHTS)).values()} == {torch.float16}
    assert (run / "loss.png").read_bytes() == b"png"


def test_a_step_half_width_would_change_ships_in_float32(tmp_path) -> None:
    run, _ = trained_run(tmp_path, "wide", EventEncoding(), NetConfig(embedding_dim=8, hidden_sizes=(16,)))
    drift = half_drift(load_model(run).model, 338)
    done = ship(run, tmp_path / "zoo" / "wide", max_drift=drift / 2)
    assert done["weights_dtype"] == "float32"
    assert load_model(tmp_path / "zoo" / "wide").meta["shipped"]["half_drift"] == drift


def test_the_shipped_zoo_loads_by_name_and_is_listed_but_is_no_genre(tmp_path, monkeypatch, capsys) -> None:
    run, _ = trained_run(tmp_path, stopped_by=TIME_CAP)
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("RTGEN_MODELS", raising=False)
    assert models_cmd.run(argparse.Namespace(json=False, ship=[str(run)])) == 0
    assert "float16 weights" in capsys.readouterr().out
    assert find_model(run.name) == tmp_path / "models" / "zoo" / run.name
    assert installed_folders() == [] and [m.name for m in installed_folders(zoo=True)] == [run.name]
    assert models_cmd.run(argparse.Namespace(json=False, ship=None)) == 0
    assert "CUT by its time cap" in capsys.readouterr().out
    models_cmd.run(argparse.Namespace(json=True, ship=None))
    assert json.loads(capsys.readouterr().out)[0]["cut_by_time_cap"] is True
