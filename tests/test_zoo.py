"""``rtgen eval zoo``: a trained window model and a trained RNN, from a folder corpus, in one table."""

from __future__ import annotations

import json
import math

import pytest
from test_corpus import tune

from rtgen.cli import main
from rtgen.evaluate.zoo import ZooConfig, format_table, run_zoo
from rtgen.nets.config import NetConfig
from rtgen.train.config import CorpusSpec, TrainConfig
from rtgen.train.loop import train


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """Two tiny checkpoints trained on twelve MIDI files: bilstm2 and lstm3x512 shapes, narrowed."""
    monkeypatch.setenv("RTGEN_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "tunes"
    corpus.mkdir()
    for i in range(12):
        tune(corpus / f"t{i:02}.mid", shift=i)
    nets = {
        "bilstm2": NetConfig(embedding_dim=8, hidden_sizes=(12, 12), family="bilstm2", window=8, dropout=0.0),
        "lstm3x512": NetConfig(embedding_dim=8, hidden_sizes=(12, 12, 12), dense_sizes=(8,), layer_norm=True),
    }
    folders = []
    for arch, net in nets.items():
        config = TrainConfig(
            genre="tunes",
            arch=arch,
            corpus=CorpusSpec(str(corpus), "melody"),
            net=net,
            seq_len=max(net.window, 16),
            batch_size=8,
            steps_per_epoch=5,
            epochs=2,
            transpose=False,
            valid_fraction=0.25,
            threads=1,
            device="cpu",
            out_dir=str(tmp_path / "zoo" / arch),
        )
        folders.append(train(config, progress=False))
    return folders


def test_each_checkpoint_gets_its_row_with_costs_scores_and_samples(trained):
    rows = run_zoo(trained, ZooConfig(max_valid_tokens=400, samples=2, step_count=20))
    assert [row["arch"] for row in rows] == ["bilstm2", "lstm3x512"]
    for row in rows:
        assert row["encoding"] == "event" and row["device"] == "cpu" and row["parameters"] > 0
        assert row["train_tokens"] > 0 and math.isfinite(row["model_ce"]) and 0 <= row["accuracy"] <= 1
        assert 0 < row["step_p50_ms"] <= row["step_p99_ms"] and math.isfinite(row["ngram_ce"])
    assert rows[0]["valid_tokens"] < rows[1]["valid_tokens"]  # the window model skips its first window
    table = format_table(rows)
    assert table.count(" | bilstm2 | ") == 1 and "lstm3x512: genre paper" in table


def test_the_command_prints_json_rows_and_says_how_to_train_when_there_is_nothing(trained, capsys, monkeypatch):
    assert main(["eval", "zoo", "--models", str(trained[0]), "--json", "--max-tokens", "300", "--write"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["arch"] == "bilstm2" and row["valid_tokens"] <= 300
    (written,) = json.loads((trained[0] / "meta.json").read_text())["metrics"]["eval"].values()
    assert written["model_ce"] == row["model_ce"] and written["ngram_ce"] == row["ngram_ce"]
    monkeypatch.chdir(trained[0].parent)
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(trained[0].parent / "no-shipped-models"))
    assert main(["eval", "zoo", "--no-shipped"]) == 2
    assert "rtgen train --config models/configs/zoo/NAME.toml" in capsys.readouterr().err


def test_a_genre_conditioned_row_names_the_corpus_of_the_genre_it_is_scored_on():
    from rtgen.evaluate.zoo import describe

    train = {
        "arch": "two-phase",
        "corpus": {"source": "essenFolksong"},  # the unused default of a --genres run
        "genres": {"reels": {"source": "ryansMammoth"}, "hymns": {"source": "bach"}},
    }
    assert describe({"train": train, "genres": ["reels", "hymns"]})["corpus"] == "ryansMammoth"
    assert describe({"train": {"corpus": {"source": "bach"}}})["corpus"] == "bach"


def test_eval_usage_lists_every_evaluation_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "{fidelity,classifier,follow,music,zoo,fiddle} ..." in capsys.readouterr().out


def test_every_zoo_config_states_its_epochs_so_the_clock_never_decides_its_tokens():
    from pathlib import Path

    from rtgen.config import load, read_toml
    from rtgen.train.config import with_architecture

    configs = sorted((Path(__file__).resolve().parent.parent / "models" / "configs" / "zoo").glob("*.toml"))
    assert len(configs) >= 17
    for path in configs:
        table = with_architecture(read_toml(path))
        assert "epochs" in table and "steps_per_epoch" in table, f"{path.name}: its budget depends on the clock"
        assert "Budget" in path.read_text() or "Stops on its epochs" in path.read_text(), path.name
        assert load(TrainConfig, path).max_minutes >= 10, f"{path.name}: a cap that tight would decide"


def test_the_default_rows_are_the_shipped_zoo_with_a_local_run_of_the_same_name_in_its_place(tmp_path, monkeypatch):
    from rtgen.evaluate.zoo import zoo_folders

    for folder in ("models/zoo/a", "models/zoo/b", "runs/zoo/b", "runs/zoo/c", "runs/zoo/unfinished"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "meta.json").write_text("{}")
        if not folder.endswith("unfinished"):
            (tmp_path / folder / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    assert [str(p) for p in zoo_folders()] == [str(tmp_path / "models/zoo/a"), "runs/zoo/b", "runs/zoo/c"]
