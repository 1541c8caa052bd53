"""Training the phrase VAE (``--arch vae``): two-bar phrases cut from the pieces, BCE + beta * KL.

``rtgen.train.loop.train`` hands a run here when its arch is ``vae``; the run
keeps the same TrainConfig, the same corpus loading and split, the same
checkpoint folder (weights, meta.json, loss.png, resume state) as every other
architecture. What differs is the sample: not a window of next tokens but a
whole phrase of ``phrase_steps`` sixteenths in the time-step encoding.

Training phrases start on every beat of every training piece (transposed
copies included), so the model sees each bar at every beat offset; validation
phrases are the validation pieces cut end to end, scored with one fixed noise
draw so epochs compare. A phrase that begins inside a held note begins with
that note struck (the hold would otherwise decode as silence). Pieces shorter
than one phrase are left out. The learning rate is ``lr`` times ``lr_factor``
every ``vae.lr_step_epochs`` epochs (the paper: x0.1 every 10); validation
loss still picks the best checkpoint and stops early after
``patience_epochs`` without improvement.

Loss figures (``train_ce``/``valid_ce`` in the history, so the curves and
early stopping read them as for any model) are BCE + beta * KL per phrase
divided by ``phrase_steps``: nats per sixteenth.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from rtgen.config import to_dict
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import save_checkpoint, save_train_state
from rtgen.nets.vae import PhraseVAE, playable_tokens, vae_loss
from rtgen.train.config import TrainConfig, default_threads, epochs_since_best
from rtgen.train.data import load_data
from rtgen.train.runstate import TIME_CAP, record_finish, resume_state, train_state

VALID_NOISE_SEED = 1234  # the validation loss's one fixed draw of eps


class PhraseSet:
    """Windows of ``steps`` tokens, one every ``hop`` tokens, inside each piece of a ``SEP p1 SEP ... SEP`` stream."""

    def __init__(self, stream: np.ndarray, encoding, steps: int, hop: int) -> None:
        stream = np.asarray(stream, dtype=np.int64)
        cuts = np.flatnonzero(stream == encoding.sep_id)
        starts = [np.arange(a + 1, b - steps + 1, hop) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        self.starts = torch.from_numpy(np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64))
        self.stream = torch.from_numpy(stream)
        self.first = torch.from_numpy(_struck(stream, encoding))
        self.offsets = torch.arange(steps)

    def __len__(self) -> int:
        return len(self.starts)

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """Phrases [n, steps] for window numbers ``index`` [n]; a leading hold becomes the held note's onset."""
        starts = self.starts[index]
        rows = self.stream[starts[:, None] + self.offsets]
        rows[:, 0] = self.first[starts]
        return rows


def _struck(stream: np.ndarray, encoding) -> np.ndarray:
    """Per position, the token a phrase starting there begins with: the sounding pitch for a hold, else itself."""
    position = np.arange(len(stream))
    last = np.maximum.accumulate(np.where(stream != encoding.hold_id, position, 0))
    sounding = stream[last]
    sounding = np.where(sounding >= encoding.pitch_base, sounding, encoding.rest_id)
    return np.where(stream == encoding.hold_id, sounding, stream)


class PhraseTrainer:
    """One VAE training run; ``run`` returns the checkpoint folder (see the module docstring)."""

    def __init__(
        self, config: TrainConfig, device: torch.device, resume: bool = False, progress: bool = True, data=None
    ) -> None:
        _check(config)
        self.config, self.progress, self.device = config, progress, device
        torch.set_num_threads(config.threads or default_threads(1))
        torch.manual_seed(config.seed)
        self.out = Path(config.out_dir)
        self.encoding, self.data = data if data is not None else load_data(config, progress=progress)
        if self.encoding.name != "timestep":
            raise RtgenError(
                f"the vae reads time-step phrases, not {self.encoding.name!r} tokens (--encoding timestep)"
            )
        self.vae_config = dataclasses.replace(config.vae, vocab_size=len(self.encoding))
        steps = self.vae_config.phrase_steps
        self.train_set = PhraseSet(self.data[0].train, self.encoding, steps, self.encoding.steps_per_beat)
        self.valid_set = PhraseSet(self.data[0].valid, self.encoding, steps, steps)
        for name, phrases in (("training", self.train_set), ("validation", self.valid_set)):
            if not len(phrases):
                raise RtgenError(f"no {name} piece is as long as one phrase ({steps} sixteenths)")
        self.model = PhraseVAE(self.vae_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history: list[dict] = []
        self.elapsed_before = 0.0
        if resume:
            self._resume()

    def _resume(self) -> None:
        state = resume_state(self.out, self.model, self.optimizer)
        self.history = list(state["history"])
        self.elapsed_before = float(state["elapsed_s"])
        self.generator.set_state(state["sampler_rng"])
        print(f"resuming {self.out} after epoch {len(self.history)} ({self.elapsed_before / 60:.1f} min trained)")

    def run(self) -> Path:
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        reason = "epochs"
        for epoch in range(len(self.history), config.epochs):
            lr = config.lr * config.lr_factor ** (epoch // self.vae_config.lr_step_epochs)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            epoch_start = time.monotonic()
            train_loss, parts, phrases, stopped = self._epoch(epoch, start, config.max_minutes * 60)
            entry = {
                "epoch": epoch + 1,
                "train_ce": train_loss,
                "train_bce": parts[0],
                "train_kl": parts[1],
                **self._validate(),
                "lr": lr,
                "tokens": phrases * self.vae_config.phrase_steps,
                "seconds": self.elapsed_before + time.monotonic() - start,
                "phrases_per_s": round(phrases / max(time.monotonic() - epoch_start, 1e-9)),
            }
            self.history.append(entry)
            self._after_epoch(entry)
            if stopped:
                reason = TIME_CAP
                break
            if epochs_since_best(self.history) >= config.patience_epochs:
                reason = "early stopping"
                break
        self._finish(reason, time.monotonic() - start)
        return self.out

    def _epoch(self, epoch: int, start: float, budget_s: float) -> tuple[float, list[float], int, bool]:
        """``steps_per_epoch`` batches; (mean loss per step, mean [BCE, KL] per step, phrases seen, budget reached)."""
        from tqdm import tqdm

        config, steps = self.config, self.vae_config.phrase_steps
        self.model.train()
        losses, parts, stopped = [], [], False
        bar = tqdm(total=config.steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not self.progress, leave=False)
        for _ in range(config.steps_per_epoch):
            index = torch.randint(0, len(self.train_set), (config.batch_size,), generator=self.generator)
            loss, split = vae_loss(self.model, self.train_set.rows(index).to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # The loss sums over the phrase; clip as if it were the mean per step, as the token models clip.
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_norm * steps)
            self.optimizer.step()
            losses.append(loss.detach())
            parts.append(split)
            bar.set_postfix(loss=f"{losses[-1].item() / steps:.3f}")
            bar.update()
            if self.elapsed_before + time.monotonic() - start >= budget_s:
                stopped = True
                break
        bar.close()
        mean_parts = (torch.stack(parts).mean(0) / steps).tolist()
        return float(torch.stack(losses).mean()) / steps, mean_parts, len(losses) * config.batch_size, stopped

    @torch.no_grad()
    def _validate(self, batch: int = 512) -> dict:
        """Loss per step (one fixed noise draw) and reconstruction accuracy at z = mu, on validation phrases."""
        steps = self.vae_config.phrase_steps
        count = min(len(self.valid_set), max(1, self.config.valid_max_tokens // steps))
        generator = torch.Generator(device=self.device).manual_seed(VALID_NOISE_SEED)
        self.model.eval()
        total, parts, correct = 0.0, torch.zeros(2), 0
        for begin in range(0, count, batch):
            rows = self.valid_set.rows(torch.arange(begin, min(begin + batch, count))).to(self.device)
            loss, split = vae_loss(self.model, rows, generator)
            total += float(loss) * len(rows)
            parts += split.cpu() * len(rows)
            mu, _ = self.model.encode(rows)
            correct += int((playable_tokens(self.model.decode(mu), self.encoding.rest_id) == rows).sum())
        self.model.train()
        bce, kl = (parts / (count * steps)).tolist()
        return {
            "valid_ce": total / (count * steps),
            "valid_bce": bce,
            "valid_kl": kl,
            "valid_accuracy": correct / (count * steps),
        }

    def _after_epoch(self, entry: dict) -> None:
        from rtgen.train.plots import plot_losses

        improved = entry["valid_ce"] <= min(h["valid_ce"] for h in self.history)
        if improved and math.isfinite(entry["valid_ce"]):
            save_checkpoint(self.out, self.model, self.encoding, self._meta())
        save_train_state(self.out, self._train_state(entry["seconds"]))
        plot_losses(self.history, self.out / "loss.png", title=f"{self.config.genre} vae (BCE + beta*KL per sixteenth)")
        print(
            f"epoch {entry['epoch']}: train {entry['train_ce']:.4f} valid {entry['valid_ce']:.4f} nats/step "
            f"(BCE {entry['valid_bce']:.4f} KL {entry['valid_kl']:.4f}) recon accuracy {entry['valid_accuracy']:.3f} "
            f"lr {entry['lr']:.2g} {entry['phrases_per_s']:,} phrases/s {entry['seconds'] / 60:.1f} min"
            + (" *" if improved else ""),
            flush=True,
        )

    def _meta(self) -> dict:
        best = min(self.history, key=lambda h: h["valid_ce"])
        data = self.data[0]
        summary = {
            **data.summary,
            "train_phrases": len(self.train_set),
            "valid_phrases": len(self.valid_set),
        }
        return {
            "genre": self.config.genre,
            "genres": [self.config.genre],
            "corpus": {data.name: summary},
            "train": to_dict(self.config),
            "metrics": {
                "valid_ce": best["valid_ce"],
                "valid_bce": best["valid_bce"],
                "valid_kl": best["valid_kl"],
                "valid_accuracy": best["valid_accuracy"],
                "loss_unit": "BCE + beta*KL per phrase / phrase_steps (nats per sixteenth)",
                "best_epoch": best["epoch"],
                "epochs": len(self.history),
                "train_seconds": round(self.history[-1]["seconds"], 1),
                "train_tokens": sum(h["tokens"] for h in self.history),
                "ranks": 1,
                "device": self.device.type,
            },
            "history": self.history,
        }

    def _train_state(self, seconds: float) -> dict:
        return train_state(self.model, self.optimizer, self.history, seconds, self.generator.get_state())

    def _finish(self, reason: str, seconds: float) -> None:
        """Record how training ended in meta.json; drop the resume state of a finished run."""
        meta = record_finish(self.out, self.history, self.elapsed_before + seconds, reason)
        print(f"{self.out}: best valid {meta['metrics']['valid_ce']:.4f} nats/step ({reason})", flush=True)


def _check(config: TrainConfig) -> None:
    """One-line refusals of settings the phrase VAE does not take."""
    from rtgen.nets.config import NetConfig

    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise RtgenError("the vae trains in one process; run it without torchrun")
    if config.genres:
        raise RtgenError("the vae is one corpus's model; give --source, not --genres")
    if config.net != NetConfig():
        raise RtgenError("the vae takes its shape from the [vae] table, not [net] or --hidden/--dropout/--cell")


def train_phrases(
    config: TrainConfig, device: torch.device, resume: bool = False, progress: bool = True, data=None
) -> Path:
    """Run (or resume) VAE training on ``device``; returns the checkpoint folder holding the best model.

    ``data`` is ``(encoding, [GenreData])`` to train on given streams (tests).
    """
    return PhraseTrainer(config, device, resume=resume, progress=progress, data=data).run()
