"""The networks: the cell-level step and StackedStepper agree with the sequence forward."""

from __future__ import annotations

import pytest
import torch

from rtgen.config import ConfigError, from_dict
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.nets.config import NetConfig, genre_vector
from rtgen.nets.recurrent import RecurrentLM, StackedStepper, parameter_count

VOCAB = 40


def make(cell="lstm", genres=0, layer_norm=False, hidden=(16, 12), seed=0):
    torch.manual_seed(seed)
    config = NetConfig(
        vocab_size=VOCAB, embedding_dim=8, hidden_sizes=hidden, cell=cell, genre_count=genres, layer_norm=layer_norm
    )
    return RecurrentLM(config).eval()


def sequence_logits(model, tokens, genre=None):
    with torch.no_grad():
        logits, _ = model(tokens[None, :], genre=genre)
    return logits[0]


CASES = [(cell, genres, norm) for cell in ("lstm", "gru") for genres in (0, 3) for norm in (False, True)]


@pytest.mark.parametrize(("cell", "genres", "layer_norm"), CASES)
def test_step_matches_forward(cell, genres, layer_norm):
    model = make(cell, genres, layer_norm)
    tokens = torch.randint(0, VOCAB, (25,), generator=torch.Generator().manual_seed(1))
    genre = torch.tensor([0.5, 0.0, 1.5]) if genres else None
    expected = sequence_logits(model, tokens, genre)
    state = model.initial_state(1)
    for t, token in enumerate(tokens):
        logits, state = model.step(token[None], state, genre)
        torch.testing.assert_close(logits[0], expected[t], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "genres", "layer_norm"), CASES)
def test_stacked_stepper_matches_forward(cell, genres, layer_norm):
    models = [make(cell, genres, layer_norm, seed=s) for s in range(3)]
    tokens = torch.randint(0, VOCAB, (20,), generator=torch.Generator().manual_seed(2))
    genre = torch.tensor([1.0, 3.0, 0.0]) if genres else None
    expected = [sequence_logits(m, tokens, genre) for m in models]
    stepper = StackedStepper(models)
    assert stepper.stacked
    if genres:
        stepper.set_genre(genre)
    for t, token in enumerate(tokens.tolist()):
        logits = stepper.step(token)
        assert logits.shape == (3, VOCAB)
        for k in range(3):
            torch.testing.assert_close(logits[k], expected[k][t], atol=1e-5, rtol=0)
    stepper.reset()
    primed = stepper.prime(tokens[:12].tolist())
    for k in range(3):
        torch.testing.assert_close(primed[k], expected[k][11], atol=1e-5, rtol=0)
    for t in range(12, 20):
        logits = stepper.step(int(tokens[t]))
        for k in range(3):
            torch.testing.assert_close(logits[k], expected[k][t], atol=1e-5, rtol=0)


def test_stepper_falls_back_for_different_configs():
    models = [make("lstm"), make("gru", hidden=(10,)), make("lstm", layer_norm=True, hidden=(8, 8, 8))]
    stepper = StackedStepper(models)
    assert not stepper.stacked
    tokens = torch.randint(0, VOCAB, (15,), generator=torch.Generator().manual_seed(3))
    expected = [sequence_logits(m, tokens) for m in models]
    stepper.prime(tokens[:5].tolist())
    for t in range(5, 15):
        logits = stepper.step(int(tokens[t]))
        for k in range(3):
            torch.testing.assert_close(logits[k], expected[k][t], atol=1e-5, rtol=0)


def test_stepper_reuses_its_output_buffer():
    stepper = StackedStepper([make(), make(seed=1)])
    first = stepper.step(3)
    second = stepper.step(4)
    assert first.data_ptr() == second.data_ptr()


def test_stepper_refuses_mixed_vocabularies_and_bad_tokens():
    other = RecurrentLM(NetConfig(vocab_size=VOCAB + 1, embedding_dim=8, hidden_sizes=(16, 12)))
    with pytest.raises(RtgenError, match="different vocabularies"):
        StackedStepper([make(), other])
    with pytest.raises(RtgenError, match="outside the vocabulary"):
        StackedStepper([make()]).step(VOCAB)


W = {"folk": 10.0, "fiddle": 5.0, "chorale": 5.0}


def test_genre_vector_normalises_as_the_controls_do_and_refuses_what_they_refuse():
    torch.testing.assert_close(genre_vector([1, 3], 2), torch.tensor([0.25, 0.75]))
    assert genre_vector([10, 5, 5], 3).tolist() == pytest.approx(Controls(weights=W).normalised_weights(tuple(W)))
    with pytest.raises(RtgenError, match="all genre weights are zero"):  # one meaning of all-zero, as in Controls
        genre_vector([0, 0], 2)
    with pytest.raises(RtgenError, match=">= 0"):
        genre_vector([1, -1], 2)
    with pytest.raises(RtgenError, match="expected 3"):
        genre_vector([1, 1], 3)


def test_conditioning_changes_the_prediction():
    model = make(genres=2)
    tokens = torch.arange(10)
    a = sequence_logits(model, tokens, torch.tensor([1.0, 0.0]))
    b = sequence_logits(model, tokens, torch.tensor([0.0, 1.0]))
    assert (a - b).abs().max() > 1e-4


def test_config_from_toml_tables_expresses_the_papers_shapes():
    config = from_dict(NetConfig, {"hidden_sizes": [256, 512, 256], "dropout": 0.5, "cell": "lstm"})
    assert config.hidden_sizes == (256, 512, 256)
    model = RecurrentLM(config)
    assert len(model.layers) == 3 and parameter_count(model) > 1_000_000
    with pytest.raises(ConfigError, match="'hidden'"):
        from_dict(NetConfig, {"hidden": [3]})
    with pytest.raises(ConfigError, match="cell"):
        from_dict(NetConfig, {"cell": "rnn"})
    with pytest.raises(ConfigError, match="dropout"):
        from_dict(NetConfig, {"dropout": 0.95})


def test_forward_continues_from_a_given_state():
    model = make()
    tokens = torch.randint(0, VOCAB, (1, 30), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole, _ = model(tokens)
        first, state = model(tokens[:, :13])
        rest, _ = model(tokens[:, 13:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_and_stepper_match_forward_on_cuda(cell):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    models = [make(cell, genres=2, seed=s).cuda() for s in range(4)]
    tokens = torch.randint(0, VOCAB, (16,), device="cuda")
    genre = torch.tensor([0.3, 0.7])
    expected = [sequence_logits(m, tokens, genre) for m in models]
    stepper = StackedStepper(models)
    stepper.set_genre(genre)
    assert stepper.device.type == "cuda"
    state = models[0].initial_state(1)
    for t, token in enumerate(tokens.tolist()):
        logits = stepper.step(token)
        single, state = models[0].step(tokens[t : t + 1], state, genre)
        torch.testing.assert_close(single[0], expected[0][t], atol=1e-5, rtol=0)
        for k in range(4):
            torch.testing.assert_close(logits[k], expected[k][t], atol=1e-5, rtol=0)


def test_token_table_and_concat_path_match_forward_for_three_layers_and_a_genre_change():
    """Layer 1 reads the precomputed token table; later layers one [x; h] product; genre folds into layer 1."""
    models = [make("lstm", genres=2, hidden=(16, 24, 12), seed=s) for s in range(2)]
    tokens = torch.randint(0, VOCAB, (30,), generator=torch.Generator().manual_seed(5))
    first, second = torch.tensor([1.0, 0.0]), torch.tensor([0.2, 0.8])
    stepper = StackedStepper(models)
    stepper.set_genre(first)
    with torch.no_grad():
        states = [m.initial_state(1) for m in models]
        for t, token in enumerate(tokens.tolist()):
            if t == 15:
                stepper.set_genre(second)
            genre = first if t < 15 else second
            logits = stepper.step(token)
            for k, model in enumerate(models):
                expected, states[k] = model(tokens[None, t : t + 1], states[k], genre)
                torch.testing.assert_close(logits[k], expected[0, 0], atol=1e-5, rtol=0)


def test_shipped_shape_in_huge_pages_matches_forward():
    """Weights over 1 MB live in huge-page memory; the shipped shape (64, 256x2, 338) still steps exactly."""
    torch.manual_seed(0)
    config = NetConfig(vocab_size=338, embedding_dim=64, hidden_sizes=(256, 256))
    models = [RecurrentLM(config).eval() for _ in range(2)]
    tokens = torch.randint(0, 338, (12,), generator=torch.Generator().manual_seed(6))
    expected = [sequence_logits(m, tokens) for m in models]
    stepper = StackedStepper(models)
    assert stepper._layers[1]["w"].shape == (2, 512, 1024)
    for t, token in enumerate(tokens.tolist()):
        logits = stepper.step(token)
        for k in range(2):
            torch.testing.assert_close(logits[k], expected[k][t], atol=1e-5, rtol=0)
