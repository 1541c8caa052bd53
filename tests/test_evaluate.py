"""Evaluation: metrics by hand-checked examples, the Kneser-Ney baseline, copy rate and a tiny model end to end."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from rtgen.encoding import EventEncoding, Note
from rtgen.evaluate.metrics import (
    EvalConfig,
    copy_rate,
    evaluate_genre,
    macro_f1,
    music_metrics,
    pitch_ngrams,
    sample_pieces,
    token_metrics,
)
from rtgen.nets.config import NetConfig
from rtgen.nets.ngram import KneserNey
from rtgen.nets.recurrent import RecurrentLM
from rtgen.train.data import GenreData, join_pieces

ENCODING = EventEncoding()


def markov_stream(length: int, vocab: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.full(vocab, 0.2), size=vocab)
    stream = [0]
    for _ in range(length - 1):
        stream.append(int(rng.choice(vocab, p=transitions[stream[-1]])))
    return np.array(stream), transitions


def test_macro_f1_by_hand():
    targets = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 0 -> 0
    assert macro_f1(targets, predictions) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(targets, targets) == 1.0
    metrics = token_metrics(np.array([math.log(2)] * 5), targets, predictions)
    assert metrics["perplexity"] == pytest.approx(2.0) and metrics["accuracy"] == pytest.approx(0.6)


def test_kneser_ney_is_a_distribution_and_finds_the_markov_order():
    stream, transitions = markov_stream(40_000)
    model = KneserNey(12, max_order=4, pad_id=0).fit([stream[:36_000]])
    history = stream[100:400].reshape(-1, 3)
    for order, probs in model.all_orders(history).items():
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9, err_msg=f"order {order}")
        assert (probs > 0).all()
    scores = model.score(stream[36_000:])
    ce = {order: float(nll.mean()) for order, (nll, _) in scores.items()}
    truth = -np.mean(np.log(transitions[stream[36_000:-1], stream[36_001:]]))
    assert ce[2] < ce[1] and abs(ce[2] - truth) < 0.05
    assert min(ce, key=ce.get) in (2, 3)


def test_unseen_tokens_get_probability_from_the_uniform_floor():
    model = KneserNey(10, max_order=2, pad_id=0).fit([np.array([1, 2, 1, 2, 1, 2])])
    nll = model.score(np.array([1, 9]))[2][0]
    assert math.isfinite(nll[0]) and nll[0] > 2


def scale_notes(tonic: int = 60, steps=(0, 2, 4, 5, 7, 9, 11, 12)) -> list[Note]:
    return [Note(Fraction(i), tonic + s, Fraction(1)) for i, s in enumerate(steps)]


def test_music_metrics_of_a_major_scale():
    metrics = music_metrics(scale_notes())
    assert metrics["in_scale"] == 1.0 and metrics["pitch_range"] == 12
    assert metrics["notes_per_bar"] == pytest.approx(4.0)
    assert metrics["pc_entropy"] == pytest.approx(-(6 / 8 * math.log2(1 / 8) + 2 / 8 * math.log2(2 / 8)))
    chromatic = music_metrics(scale_notes(steps=range(12)))
    assert chromatic["in_scale"] < 0.75 and chromatic["pc_entropy"] == pytest.approx(math.log2(12))


def test_copy_rate_counts_verbatim_pitch_sequences():
    train = [ENCODING.encode(scale_notes(60)), ENCODING.encode(scale_notes(62))]
    keys = pitch_ngrams(train, ENCODING, n=8)
    assert keys.size == 2
    assert copy_rate([ENCODING.encode(scale_notes(62))], ENCODING, keys) == 1.0
    assert copy_rate([ENCODING.encode(scale_notes(61))], ENCODING, keys) == 0.0
    assert math.isnan(copy_rate([ENCODING.encode(scale_notes(60)[:5])], ENCODING, keys))


def toy_data() -> GenreData:
    rng = np.random.default_rng(0)
    pieces = [np.array(ENCODING.encode(scale_notes(int(rng.integers(55, 70)))), dtype=np.int16) for _ in range(24)]
    return GenreData("toy", join_pieces(pieces[:20], 1), join_pieces(pieces[20:], 1), {"source": "toy"})


def test_samples_are_pieces_of_valid_tokens():
    torch.manual_seed(0)
    model = RecurrentLM(NetConfig(embedding_dim=8, hidden_sizes=(16,))).eval()
    pieces = sample_pieces(model, ENCODING, EvalConfig(samples=3, sample_tokens=40))
    assert len(pieces) == 3 and all(0 < len(p) <= 40 for p in pieces)
    assert all(ENCODING.sep_id not in p and all(0 <= t < 338 for t in p) for p in pieces)


def test_evaluate_genre_reports_every_metric_for_a_trained_model():
    from rtgen.train.data import WindowSampler

    torch.manual_seed(0)
    data = toy_data()
    model = RecurrentLM(NetConfig(embedding_dim=16, hidden_sizes=(32,), dropout=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    sampler = WindowSampler([data.train], seq_len=32, batch_size=16, seed=0)
    for _ in range(60):
        x, y, _ = sampler.batch()
        loss = torch.nn.functional.cross_entropy(model(x)[0].reshape(-1, 338), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = evaluate_genre(model.eval(), ENCODING, data, EvalConfig(samples=4, sample_tokens=60, max_order=3))
    for key in ("model_ce", "ngram_ce", "perplexity", "accuracy", "f1", "valid_copy_rate", "pitch_range"):
        assert math.isfinite(result[key]), key
    assert result["ngram_order"] in (1, 2, 3) and set(result["ngram_ce_by_order"]) == {1, 2, 3}
    assert result["model_ce"] < math.log(338) and result["valid_copy_rate"] > 0.5
    assert result["ce_gain"] == pytest.approx(1 - result["model_ce"] / result["ngram_ce"])


def test_the_ngram_baseline_is_fitted_once_per_training_data_and_read_back_after(tmp_path, monkeypatch):
    from rtgen.evaluate import metrics

    monkeypatch.setenv("RTGEN_CACHE_DIR", str(tmp_path))
    data, config = toy_data(), EvalConfig(max_order=3)
    fitted, cached = metrics.cached_ngram_baseline(data, 338, config, ENCODING.sep_id)
    assert not cached and set(fitted["ngram_ce_by_order"]) == {1, 2, 3}
    monkeypatch.setattr(metrics, "ngram_baseline", lambda *_: pytest.fail("fitted again on the same data"))
    again, cached = metrics.cached_ngram_baseline(data, 338, config, ENCODING.sep_id)
    assert cached and again == fitted
    other = GenreData("toy", data.train[:-50], data.valid, data.summary)
    with pytest.raises(pytest.fail.Exception, match="fitted again"):
        metrics.cached_ngram_baseline(other, 338, config, ENCODING.sep_id)
    with pytest.raises(pytest.fail.Exception, match="fitted again"):
        metrics.cached_ngram_baseline(data, 338, EvalConfig(max_order=4), ENCODING.sep_id)


def test_a_damaged_baseline_cache_entry_is_fitted_again(tmp_path, monkeypatch):
    from rtgen.evaluate.metrics import cached_ngram_baseline

    monkeypatch.setenv("RTGEN_CACHE_DIR", str(tmp_path))
    data, config = toy_data(), EvalConfig(max_order=2)
    fitted, _ = cached_ngram_baseline(data, 338, config, ENCODING.sep_id)
    (entry,) = (tmp_path / "ngram").glob("*.json")
    entry.write_text('{"ngram_ce": ')
    again, cached = cached_ngram_baseline(data, 338, config, ENCODING.sep_id)
    assert not cached and again == fitted
    assert cached_ngram_baseline(data, 338, config, ENCODING.sep_id)[1]
