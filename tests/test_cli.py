"""The command line's manners: progress on stderr, one-line errors, output folders, installed models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rtgen.cli import main
from rtgen.cli.progress import Counter
from rtgen.encoding import EventEncoding
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import find_model, installed_folders, load_model, save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM


class Ticks:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_counts_at_most_once_an_interval_and_always_the_end():
    clock, lines = Ticks(), []
    counter = Counter("generate", 10, "bars", interval_s=2.0, quiet_below_s=2.0, say=lines.append, clock=clock)
    for done in range(1, 11):
        clock.t += 0.5
        counter(done)
    assert lines == ["generate: 4/10 bars (2.0 s)", "generate: 8/10 bars (4.0 s)", "generate: 10/10 bars (5.0 s)"]


def test_progress_stays_quiet_for_a_short_run():
    clock, lines = Ticks(), []
    counter = Counter("generate", 3, "bars", say=lines.append, clock=clock)
    for done in (1, 2, 3):
        clock.t += 0.1
        counter(done)
    assert lines == []


def test_an_output_file_in_a_missing_folder_is_refused_naming_the_folder(tmp_path):
    from rtgen.cli.outputs import output_file

    assert output_file(tmp_path / "a.mid", "-o") == tmp_path / "a.mid"
    with pytest.raises(RtgenError, match=rf"^-o .*: the folder {re.escape(str(tmp_path / 'no'))} does not exist"):
        output_file(tmp_path / "no" / "a.mid", "-o")
    (tmp_path / "file").write_text("")
    with pytest.raises(RtgenError, match="is not a folder"):
        output_file(tmp_path / "file" / "a.mid", "--prepare")
    with pytest.raises(RtgenError, match="is a folder; give a file name"):
        output_file(tmp_path, "-o")


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--bars", "1", "-o", "{missing}/x.mid"],
        ["generate", "--bars", "1", "-o", "{ok}/x.mid", "--musicxml", "{missing}/x.musicxml"],
        ["demo", "-o", "{missing}/d.mid"],
        ["train", "--prepare", "{missing}/p.npz"],
    ],
)
def test_commands_refuse_to_write_into_a_missing_folder_before_any_work(argv, tmp_path, capsys):
    missing = tmp_path / "missing"
    args = [a.format(missing=missing, ok=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the folder {missing} does not exist" in err
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def _model(folder: Path, genre: str, hidden: int = 16) -> Path:
    model = RecurrentLM(NetConfig(embedding_dim=8, hidden_sizes=(hidden,)))
    save_checkpoint(folder / genre, model, EventEncoding(), {"genre": genre, "metrics": {"valid_ce": 1.5}})
    return folder / genre


@pytest.fixture
def two_folders(tmp_path, monkeypatch):
    """A shipped folder (folk, fiddle) and a user folder (folk again, jazz) set as RTGEN_MODELS."""
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    _model(shipped, "folk"), _model(shipped, "fiddle"), _model(user, "folk", hidden=12), _model(user, "jazz")
    (shipped / "configs").mkdir()
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(shipped))
    monkeypatch.setenv("RTGEN_MODELS", str(user))
    return shipped.resolve(), user.resolve()


def test_rtgen_models_adds_the_users_models_to_the_shipped_ones_and_the_user_wins_a_clash(two_folders, capsys):
    shipped, user = two_folders
    assert [(m.name, m.folder, m.hides) for m in installed_folders()] == [
        ("fiddle", shipped / "fiddle", None),
        ("folk", user / "folk", shipped / "folk"),
        ("jazz", user / "jazz", None),
    ]
    assert find_model("folk") == user / "folk" and find_model("fiddle") == shipped / "fiddle"
    assert load_model("folk").model.config.hidden_sizes == (12,)
    model = RecurrentLM(NetConfig(embedding_dim=8, hidden_sizes=(8,)))
    save_checkpoint(user / "bare", model, EventEncoding(), {"genre": "bare"})  # no corpus, no metrics
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert (
        "bare (rnn 8, event encoding): corpus not recorded; 0 pieces" in out
        and "? epochs (? tokens) in 0.0 min, valid CE ?" in out
    )
    assert f"from {user / 'folk'} (RTGEN_MODELS), used instead of the shipped {shipped / 'folk'}" in out
    assert f"from {user / 'jazz'} (RTGEN_MODELS)\n" in out and "\nfiddle (rnn " in out


def test_rtgen_models_lists_a_broken_checkpoint_as_broken_with_its_reason(two_folders, capsys):
    shipped, user = two_folders
    weights = user / "jazz" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    meta = json.loads((shipped / "fiddle" / "meta.json").read_text())
    meta["config"]["hidden_sizes"] = [32]
    (shipped / "fiddle" / "meta.json").write_text(json.dumps(meta))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fiddle: BROKEN, not loadable: ") and "do not fit the config" in lines[0]
    assert any(line.startswith("jazz: BROKEN, not loadable: ") and "truncated" in line for line in lines)
    assert any(line.startswith("folk (rnn 12, event encoding): ") and "valid CE 1.500" in line for line in lines)
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert "truncated" in listed["jazz"]["broken"] and listed["folk"]["broken"] is None


def test_after_training_rtgen_says_how_to_use_the_new_model(two_folders):
    from rtgen.cli.train_cmd import usage_hint
    from rtgen.train.config import TrainConfig, parse_genres

    shipped, user = two_folders
    hint = usage_hint(user / "jazz", TrainConfig(genre="jazz"))
    assert hint.splitlines() == [
        f"use it: RTGEN_MODELS={user} python -m rtgen generate --genres jazz -o jazz.mid",
        f"   live: RTGEN_MODELS={user} python -m rtgen run --genres jazz",
    ]
    assert "(it replaces the shipped folk)" in usage_hint(user / "folk", TrainConfig(genre="folk"))
    both = TrainConfig(genres=parse_genres("a=x,b=y"))
    assert "--method conditional --genres a=1,b=1" in usage_hint(user / "multi", both)
    assert f"rename {user / 'ab'} to {user / 'multi'}" in usage_hint(user / "ab", both)
