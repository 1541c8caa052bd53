"""The seed papers' networks: each builds, steps as it forwards, trains, saves, loads and fuses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_train import ENCODING, tiny_config, toy_genre

from rtgen.cli import main
from rtgen.errors import RtgenError
from rtgen.nets.architectures import ARCHITECTURES, architecture, build_model
from rtgen.nets.checkpoint import load_model
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import StackedStepper
from rtgen.train.config import with_architecture
from rtgen.train.data import score_stream, score_windows
from rtgen.train.loop import train

VOCAB = 40


def small(name: str, seed: int = 0, vocab: int = VOCAB, **changes) -> torch.nn.Module:
    """The architecture at a test size: its family and layer count, narrow layers and a short window."""
    net = dict(architecture(name).net)
    layers = len(net.pop("hidden_sizes"))
    net.update(hidden_sizes=(16,) * layers, dense_sizes=(12,) * len(net.get("dense_sizes", ())), heads=4)
    net["window"] = 6 if net.get("window") else 0
    torch.manual_seed(seed)
    config = NetConfig(vocab_size=vocab, embedding_dim=8, **{**net, **changes})
    return build_model(config).eval()


def tokens(count: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(2, VOCAB, (count,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", [name for name in ARCHITECTURES if name != "vae"])  # no token steps: test_vae.py
def test_each_step_gives_what_a_forward_over_its_context_gives(name):
    model, sequence = small(name), tokens(14)
    state = model.initial_state(1)
    with torch.no_grad():
        full, _ = model(sequence[None, :])
    for t, token in enumerate(sequence):
        logits, state = model.step(token[None], state)
        if model.config.windowed:  # the window model sees the last `window` tokens, from scratch each time
            with torch.no_grad():
                expected, _ = model(sequence[None, max(0, t + 1 - model.window) : t + 1])
            torch.testing.assert_close(logits[0], expected[0, -1], atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(logits[0], full[0, t], atol=1e-5, rtol=0)


def test_a_window_model_fuses_with_a_stepping_rnn_behind_one_stepper():
    rnn, window = small("lstm-256-512-256"), small("bilstm2", seed=3)
    stepper = StackedStepper([rnn, window])
    assert not stepper.stacked
    sequence = tokens(10)
    for token in sequence.tolist():
        logits = stepper.step(token)
    with torch.no_grad():
        expected, _ = window(sequence[None, -window.window :])
    torch.testing.assert_close(logits[1], expected[0, -1], atol=1e-5, rtol=0)
    stepper.reset()
    torch.testing.assert_close(stepper.prime(sequence.tolist())[1], expected[0, -1], atol=1e-5, rtol=0)


def test_window_settings_are_checked():
    with pytest.raises(ValueError, match="window >= 2"):
        NetConfig(family="bilstm2", window=0)
    with pytest.raises(ValueError, match="whole past"):
        NetConfig(window=8)
    with pytest.raises(ValueError, match="family"):
        NetConfig(family="transformer")
    with pytest.raises(RtgenError, match="no genre conditioning"):
        small("bilstm2")(tokens(8)[None, :], None, torch.ones(2))


def test_window_scoring_uses_exactly_the_context_from_a_fresh_state():
    model, stream = small("lstm3x512"), tokens(30, seed=4).numpy()
    score = score_windows(model, stream, context=5)
    assert len(score.nll) == 25 and (score.targets == stream[5:]).all()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(stream[7:12])[None, :])
    expected = torch.log_softmax(logits[0, -1], -1)[stream[12]]
    assert score.nll[7] == pytest.approx(-float(expected), abs=1e-5)
    windowed = small("bigru-attention")
    assert len(score_stream(windowed, stream).nll) == 30 - windowed.window


def test_named_settings_sit_under_the_files_and_the_flag_picks_the_name():
    table = with_architecture({"seq_len": 50, "net": {"dropout": 0.1}}, "bilstm2")
    assert table["arch"] == "bilstm2" and table["seq_len"] == 50 and table["lr"] == 0.001
    assert table["net"]["dropout"] == 0.1 and table["net"]["family"] == "bilstm2"
    assert with_architecture({"arch": "bilstm2"}, "lstm3x512")["net"]["hidden_sizes"] == [512, 512, 512]
    assert with_architecture({"lr": 0.5}) == {"lr": 0.5}
    with pytest.raises(RtgenError, match="unknown architecture 'gpt'"):
        with_architecture({}, "gpt")


def test_the_one_composer_network_has_the_papers_linear_dense_layer_and_no_input_dropout():
    model = small("lstm-256-512-256")
    assert model.config.dense_activation == "linear" and model.input_drop.p == 0.0 and model.drop.p == 0.5
    assert not any(isinstance(layer, torch.nn.ReLU) for layer in model.dense)
    assert any(isinstance(layer, torch.nn.ReLU) for layer in small("lstm3x512").dense)


@pytest.mark.parametrize("name", ["bigru-attention", "lstm3x512"])
def test_an_architecture_trains_saves_and_loads_by_its_own_config(tmp_path, name):
    arch = architecture(name)
    net = small(name).config
    config = tiny_config(tmp_path, arch=name, seq_len=net.window or 24)
    config = dataclasses.replace(config, net=dataclasses.replace(net, dropout=0.0))
    out = train(config, progress=False, data=(ENCODING, [toy_genre("toy")]))
    loaded = load_model(out)
    assert type(loaded.model) is type(small(name)) and loaded.meta["train"]["arch"] == arch.name
    history = loaded.meta["history"]
    assert history[-1]["valid_ce"] < history[0]["valid_ce"] < np.log(338)


def test_train_arch_flag_builds_the_papers_network(tmp_path, monkeypatch, capsys):
    recorded = {}
    monkeypatch.setattr("rtgen.train.loop.train", lambda config, **kw: recorded.setdefault("config", config))
    monkeypatch.setattr("rtgen.cli.train_cmd.usage_hint", lambda out, config: "")
    assert main(["train", "--arch", "lstm-256-512-256", "--source", "ryansMammoth", "--dropout", "0.4"]) == 0
    config = recorded["config"]
    assert config.net.hidden_sizes == (256, 512, 256) and config.net.dense_sizes == (256,)
    assert config.seq_len == 75 and config.net.dropout == 0.4
    assert main(["train", "--arch", "gpt"]) == 2
    assert "unknown architecture 'gpt'" in capsys.readouterr().err


def test_a_run_from_a_toml_with_its_own_window_resumes_from_that_toml(tmp_path, monkeypatch, capsys):
    from rtgen.train.data import save_prepared
    from rtgen.train.loop import Trainer

    data = save_prepared(tmp_path / "toy.npz", ENCODING, [toy_genre("toy")])
    toml = tmp_path / "bigru.toml"
    toml.write_text(
        f'genre = "toy"\narch = "bigru-attention"\ndata_file = "{data}"\nseq_len = 6\nbatch_size = 8\n'
        'steps_per_epoch = 4\nthreads = 1\ndevice = "cpu"\n'
        "[net]\nhidden_sizes = [8, 8]\ndense_sizes = [8]\nwindow = 6\n"  # a window of its own: not the arch's 64
    )
    start = ["train", "--config", str(toml), "--out", str(tmp_path / "run"), "--no-progress"]
    monkeypatch.setattr(Trainer, "_finish", lambda self, reason, seconds: None)  # as if killed after epoch 1
    assert main([*start, "--epochs", "1"]) == 0
    monkeypatch.undo()
    assert main([*start, "--resume", "--epochs", "2"]) == 0, capsys.readouterr().err
    assert [h["epoch"] for h in load_model(tmp_path / "run").meta["history"]] == [1, 2]


def test_the_default_genres_share_the_shipped_models_vocabulary(tmp_path, monkeypatch):
    """With RTGEN_MODELS full of zoo runs, a plain `rtgen run` keeps what can fuse with the shipped models."""
    from rtgen.daemon.wiring import shipped_genres
    from rtgen.data.timestep import TimeStepEncoding
    from rtgen.nets.checkpoint import save_checkpoint

    shipped, user = tmp_path / "shipped", tmp_path / "user"
    event, steps = ENCODING, TimeStepEncoding()
    for folder, name, encoding in [(shipped, "folk", event), (user, "bilstm2-folk", event), (user, "ts", steps)]:
        save_checkpoint(folder / name, small("lstm3x512", vocab=len(encoding)), encoding, {"genre": name})
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(shipped))
    monkeypatch.setenv("RTGEN_MODELS", str(user))
    assert shipped_genres() == ["bilstm2-folk", "folk"]
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "none"))
    assert shipped_genres() == ["bilstm2-folk"]  # no shipped models: the first model's vocabulary
