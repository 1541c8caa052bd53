"""Training the fusion paper's two-phase model in one run: each genre RNN on its own corpus, then the fusion LSTM.

Phase 1 trains genre RNN g on genre g's stream alone (the paper's per-genre
melody models), keeping its best validation epoch. Phase 2 freezes them and
trains the fusion LSTM on windows of every genre, with genre weights chosen
per row so that the weights steer:

* ``ONE_HOT_SHARE`` of the rows carry their stream's own genre, one-hot (the
  conditional model's labels): full weight on a genre must give that genre;
* the other rows carry a mixture w ~ Dirichlet(``DIRICHLET_ALPHA``), and their
  stream comes from a genre drawn with probability w_g. For a given w the
  loss is then minimised by the weight-proportional mixture
  ``sum_g w_g p_g(stream)``, so a blend's output moves with its weights
  rather than with whatever genre the window happens to be from. The rows
  are drawn genre-balanced (``WindowSampler``), so w is drawn from its
  posterior given the genre, Dirichlet(alpha + one-hot): with a symmetric
  Dirichlet every genre's prior chance is 1/G, the sampler's, and the pair
  (w, genre) has exactly the joint law above.

No corpus holds fused pieces to learn a within-piece blend from; what the
weights can learn from genre-labelled streams is how likely a stream is under
each genre. A blend is therefore a sequence-level mixture: it starts from the
weighted mixture and leans, as it plays, to the genre its own notes resemble.

Each phase stops on the run's epochs (or its patience), so its tokens are
the same on any machine; ``max_minutes`` is a safety cap over both phases:
``PHASE_ONE_SHARE`` of it for the genre RNNs (time one leaves unused passes to
the next), the rest for the fusion LSTM, and a run it cut says so in
``metrics.stopped_by``. Each phase uses the run's steps per epoch, learning
rate plateau rule and patience. Validation: phase 1, each genre's stream under its
own RNN; phase 2, each genre's stream with its own genre's weight alone (the
mean picks the best epoch). At the end, the streams are also scored with
uniform weights and with the next genre's weight alone (``metrics.steering``):
the gap to their own weight is how much the weights steer.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rtgen.config import to_dict
from rtgen.errors import RtgenError
from rtgen.nets.architectures import build_model
from rtgen.nets.checkpoint import save_checkpoint
from rtgen.train.config import TIME_CAP, TrainConfig, default_threads, lr_at, net_config_for, stop_reason
from rtgen.train.data import GenreData, WindowSampler, load_data, score_stream

PHASE_ONE_SHARE = 0.4  # of max_minutes, for all genre RNNs together
ONE_HOT_SHARE = 0.5  # phase-2 rows weighted by their own genre alone
DIRICHLET_ALPHA = 1.0  # the other rows' weights ~ Dirichlet(alpha): 1 is uniform over all blends
STEERING_TOKENS = 20_000  # validation tokens per genre and weight setting in the final steering figures


def train_two_phase(
    config: TrainConfig, device: torch.device, resume: bool = False, progress: bool = True, data=None
) -> Path:
    """Both phases on ``device``; returns the checkpoint folder. ``data``: (encoding, [GenreData]) as ``train``."""
    if resume:
        raise RtgenError("two-phase training does not resume; run it again (both phases fit in its max_minutes)")
    if len(config.genres) < 2:
        raise RtgenError("--arch two-phase needs --genres NAME=SOURCE,... with two or more genres")
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise RtgenError("two-phase training runs in one process; start it without torchrun")
    torch.set_num_threads(config.threads or default_threads(1))
    torch.manual_seed(config.seed)
    encoding, genres = data if data is not None else load_data(config, progress=progress)
    model = build_model(net_config_for(config, encoding)).to(device)
    started = time.monotonic()
    phase_one_end = started + PHASE_ONE_SHARE * config.max_minutes * 60
    phase_one = {}
    for index, genre in enumerate(genres):
        budget_s = (phase_one_end - time.monotonic()) / (len(genres) - index)
        phase_one[genre.name] = _train_genre(model.genre_nets[index], genre, config, device, budget_s, progress)
    budget_s = started + config.max_minutes * 60 - time.monotonic()
    history, reason = _train_fusion(model, genres, config, device, budget_s, progress)
    out = Path(config.out_dir)
    meta = _meta(config, model, genres, phase_one, history, reason, time.monotonic() - started)
    save_checkpoint(out, model, encoding, meta)
    from rtgen.train.plots import plot_losses

    plot_losses(history, out / "loss.png", title=f"{config.genre} fusion LSTM")
    steering = meta["metrics"]["steering"]["mean"]
    print(
        f"{out}: best valid {meta['metrics']['valid_ce']:.4f} nats/token ({reason}); with another genre's weight "
        f"{steering['other']:.4f}, uniform {steering['uniform']:.4f}",
        flush=True,
    )
    return out


def _train_genre(net: nn.Module, genre: GenreData, config: TrainConfig, device, budget_s: float, progress: bool):
    """Phase 1 for one genre RNN on its own stream; (history, how it stopped)."""
    sampler = WindowSampler([genre.train], config.seq_len, config.batch_size, config.seed)

    def batch_loss() -> tuple[Tensor, int]:
        x, y, _ = sampler.batch()
        net.train()
        logits, _ = net(x.to(device))
        return F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten()), y.numel()

    def validate() -> float:
        return score_stream(net, genre.valid, max_tokens=config.valid_max_tokens).cross_entropy

    return fit(net, list(net.parameters()), batch_loss, validate, config, budget_s, f"phase 1 {genre.name}", progress)


def _train_fusion(model: nn.Module, genres: Sequence[GenreData], config: TrainConfig, device, budget_s, progress):
    """Phase 2: the fusion LSTM over every genre's windows with steering weights, genre RNNs frozen."""
    for parameter in model.genre_nets.parameters():
        parameter.requires_grad_(False)
    sampler = WindowSampler([g.train for g in genres], config.seq_len, config.batch_size, config.seed)
    rng = np.random.default_rng(config.seed)

    def batch_loss() -> tuple[Tensor, int]:
        x, y, genre = sampler.batch()
        model.train()
        model.genre_nets.eval()  # frozen: no dropout in the signals the fusion LSTM learns to read
        weights = steering_weights(genre, len(genres), rng).to(device)
        logits, _ = model(x.to(device), None, weights)
        return F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten()), y.numel()

    def validate() -> float:
        count = len(genres)
        return float(
            np.mean([_score(model, g, _one_hot(i, count), config.valid_max_tokens) for i, g in enumerate(genres)])
        )

    fusion = [p for p in model.parameters() if p.requires_grad]
    return fit(model, fusion, batch_loss, validate, config, budget_s, "phase 2 fusion", progress)


def steering_weights(genre: Tensor, count: int, rng: np.random.Generator) -> Tensor:
    """Weights [B, G] for rows of genres ``genre`` [B]: their one-hot, or a Dirichlet blend drawn given the genre."""
    one_hot = np.eye(count)[genre.numpy()]
    blend = rng.gamma(DIRICHLET_ALPHA + one_hot)  # Dirichlet(alpha + one-hot) through normalised gammas
    blend /= blend.sum(axis=1, keepdims=True)
    alone = rng.random(len(one_hot)) < ONE_HOT_SHARE
    return torch.from_numpy(np.where(alone[:, None], one_hot, blend)).float()


def fit(
    module: nn.Module,
    parameters: list[nn.Parameter],
    batch_loss: Callable[[], tuple[Tensor, int]],
    validate: Callable[[], float],
    config: TrainConfig,
    budget_s: float,
    label: str,
    progress: bool,
) -> tuple[list[dict], str]:
    """Adam on ``batch_loss()`` (mean CE, tokens) with the run's plateau rule and patience, for ``budget_s`` seconds.

    Leaves ``module`` with its best validation epoch's weights; returns the
    history (one entry per epoch, as ``Trainer`` writes them) and how it stopped.
    """
    from tqdm import tqdm

    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict] = []
    best, reason, started = copy.deepcopy(module.state_dict()), "epochs", time.monotonic()
    for epoch in range(config.epochs):
        lr = lr_at(history, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses, tokens, stopped = [], 0, False
        for _ in tqdm(range(config.steps_per_epoch), desc=f"{label} {epoch + 1}", disable=not progress, leave=False):
            loss, count = batch_loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
            optimizer.step()
            losses.append(loss.detach())
            tokens += count
            if time.monotonic() - started >= budget_s:
                stopped = True
                break
        valid = validate()
        improved = not history or valid < min(h["valid_ce"] for h in history)
        history.append(
            {
                "epoch": epoch + 1,
                "train_ce": float(torch.stack(losses).mean()),
                "valid_ce": valid,
                "lr": lr,
                "tokens": tokens,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        if improved:
            best = copy.deepcopy(module.state_dict())
        print(
            f"{label} epoch {epoch + 1}: train {history[-1]['train_ce']:.4f} valid {valid:.4f} nats/token "
            f"lr {lr:.2g} {(time.monotonic() - started) / 60:.1f} min{' *' if improved else ''}",
            flush=True,
        )
        if stop := stop_reason(history, config, stopped):
            reason = stop
            break
    module.load_state_dict(best)
    return history, reason


def _one_hot(index: int, count: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(count)]


def _score(model: nn.Module, genre: GenreData, weights: Sequence[float], max_tokens: int) -> float:
    return score_stream(model, genre.valid, weights, max_tokens=max_tokens).cross_entropy


def steering(model: nn.Module, genres: Sequence[GenreData], max_tokens: int = STEERING_TOKENS) -> dict:
    """Validation CE (nats/token) of each genre's stream with its own weight, the next genre's, and uniform."""
    count = len(genres)
    per_genre = {
        g.name: {
            "own": _score(model, g, _one_hot(i, count), max_tokens),
            "other": _score(model, g, _one_hot((i + 1) % count, count), max_tokens),
            "uniform": _score(model, g, [1.0] * count, max_tokens),
        }
        for i, g in enumerate(genres)
    }
    mean = {key: float(np.mean([v[key] for v in per_genre.values()])) for key in ("own", "other", "uniform")}
    return {"mean": mean, "by_genre": per_genre, "tokens_per_genre": max_tokens}


def _stopped_by(fusion: str, genre_nets: Sequence[str]) -> str:
    """How the run ended: the fusion LSTM's reason, or ``TIME_CAP`` when the cap cut either phase."""
    return TIME_CAP if TIME_CAP in (fusion, *genre_nets) else fusion


def _meta(config, model, genres, phase_one: dict, history: list[dict], reason: str, seconds: float) -> dict:
    best = min(history, key=lambda h: h["valid_ce"])
    genre_tokens = sum(h["tokens"] for runs, _ in phase_one.values() for h in runs)
    return {
        "genre": config.genre,
        "genres": [g.name for g in genres],
        "corpus": {g.name: g.summary for g in genres},
        "train": to_dict(config),
        "metrics": {
            "valid_ce": best["valid_ce"],
            "best_epoch": best["epoch"],
            "epochs": len(history),
            "train_seconds": round(seconds, 1),
            "train_tokens": genre_tokens + sum(h["tokens"] for h in history),
            "ranks": 1,
            "device": model.device.type,
            "stopped_by": _stopped_by(reason, [how for _, how in phase_one.values()]),
            "phase_one_valid_ce": {name: min(h["valid_ce"] for h in runs) for name, (runs, _) in phase_one.items()},
            "steering": steering(model, genres, min(STEERING_TOKENS, config.valid_max_tokens)),
        },
        "history": history,
        "phase_one_history": {name: {"history": runs, "stopped_by": how} for name, (runs, how) in phase_one.items()},
    }
