"""``train``, which hands a run to its trainer, and the token models' training loop: one object per run.

Adam with gradient clipping on random windows; after every ``steps_per_epoch``
batches the validation cross-entropy picks the learning rate, the best
checkpoint and whether to stop (``rtgen.train.config``). Resume state is
written after every epoch, so ``--resume`` continues an interrupted run.
Runs unchanged under ``torchrun`` (DistributedDataParallel): every rank runs
the same loop on its own data shard; running out of time is agreed through an
all-reduce, and rank 0 broadcasts the validation loss that early stopping
reads, so no rank waits for a step the others will never take. Rank 0 alone
validates, writes checkpoints, plots and shows the progress bar.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from rtgen.config import to_dict
from rtgen.nets.architectures import build_model
from rtgen.nets.checkpoint import save_checkpoint, save_train_state
from rtgen.nets.device import pick_device
from rtgen.nets.recurrent import parameter_count
from rtgen.train.config import TrainConfig, default_threads, lr_at, net_config_for, stop_reason
from rtgen.train.data import WindowSampler, load_data, score_stream
from rtgen.train.runstate import record_finish, resume_state, train_state


def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when run directly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True, data=None) -> None:
        self.config = config
        self.rank, self.world, local_rank = _dist_env()
        self.device = pick_device(config.device, local_rank)
        torch.set_num_threads(config.threads or default_threads(self.world))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
        self.main = self.rank == 0
        self.progress = progress and self.main
        self.out = Path(config.out_dir)
        torch.manual_seed(config.seed)
        self.encoding, self.data = data if data is not None else load_data(config, progress=self.progress)
        self.net_config = net_config_for(config, self.encoding)
        self.model = build_model(self.net_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.sampler = WindowSampler(
            [d.train for d in self.data], config.seq_len, config.batch_size, config.seed, self.rank, self.world
        )
        self.history: list[dict] = []
        self.step_count, self.elapsed_before = 0, 0.0
        if resume:
            self._resume()
        self.ddp = None
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _resume(self) -> None:
        state = resume_state(self.out, self.model, self.optimizer)
        self.history = list(state["history"])
        self.step_count, self.elapsed_before = int(state["steps"]), float(state["elapsed_s"])
        self.sampler.set_state(state["sampler_rng"])
        if self.main:
            print(f"resuming {self.out} after epoch {len(self.history)} ({self.elapsed_before / 60:.1f} min trained)")

    def run(self) -> Path:
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        budget_s = config.max_minutes * 60
        reason = "epochs"
        for epoch in range(len(self.history), config.epochs):
            self._set_lr(lr_at(self.history, config))
            epoch_start = time.monotonic()
            train_ce, tokens, stopped = self._epoch(epoch, start, budget_s)
            rate = tokens / max(time.monotonic() - epoch_start, 1e-9)
            entry = self._validate(epoch, train_ce, tokens, time.monotonic() - start)
            entry["tokens_per_s"] = round(rate)
            self.history.append(entry)
            if self.main:
                self._after_epoch(entry)
            if stop := stop_reason(self.history, config, stopped):
                reason = stop
                break
        if self.main:
            self._finish(reason, time.monotonic() - start)
        return self.out

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _epoch(self, epoch: int, start: float, budget_s: float) -> tuple[float, int, bool]:
        """Train ``steps_per_epoch`` batches; (mean train CE, tokens predicted by all ranks, budget reached)."""
        from tqdm import tqdm

        config, net = self.config, self.ddp or self.model
        genres = torch.eye(len(self.data), device=self.device) if config.genres else None
        net.train()
        losses, tokens, stopped = [], 0, False
        bar = tqdm(total=config.steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not self.progress, leave=False)
        tick = time.monotonic()
        for _ in range(config.steps_per_epoch):
            x, y, g = self.sampler.batch()
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            logits, _ = net(x, None, genres[g.to(self.device)] if genres is not None else None)
            y = y[:, -logits.shape[1] :]  # a window model predicts only the token after its window
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_norm)
            self.optimizer.step()
            self.step_count += 1
            losses.append(loss.detach())
            tokens += y.numel() * self.world
            now = time.monotonic()
            bar.set_postfix(loss=f"{losses[-1].item():.3f}", tok_s=f"{y.numel() * self.world / (now - tick):,.0f}")
            bar.update()
            tick = now
            if self._agree(self.elapsed_before + now - start >= budget_s):
                stopped = True
                break
        bar.close()
        return float(torch.stack(losses).mean()), tokens, stopped

    def _agree(self, flag: bool) -> bool:
        """True on every rank when any rank says so."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _validate(self, epoch: int, train_ce: float, tokens: int, seconds: float) -> dict:
        """Validation CE (mean over genres) on rank 0, shared with every rank."""
        per_genre = {}
        if self.main:
            for index, data in enumerate(self.data):
                genre = self._genre_onehot(index)
                score = score_stream(self.model, data.valid, genre, max_tokens=self.config.valid_max_tokens)
                per_genre[data.name] = score.cross_entropy
        value = torch.tensor([float(np.mean(list(per_genre.values()))) if self.main else 0.0], device=self.device)
        if self.world > 1:
            torch.distributed.broadcast(value, src=0)
        return {
            "epoch": epoch + 1,
            "train_ce": train_ce,
            "valid_ce": float(value.item()),
            "valid_ce_by_genre": per_genre,
            "lr": self.optimizer.param_groups[0]["lr"],
            "tokens": tokens,
            "seconds": self.elapsed_before + seconds,
        }

    def _genre_onehot(self, index: int) -> list[float] | None:
        if not self.config.genres:
            return None
        return [1.0 if i == index else 0.0 for i in range(len(self.data))]

    def _after_epoch(self, entry: dict) -> None:
        best = min(h["valid_ce"] for h in self.history)
        improved = entry["valid_ce"] <= best
        if improved and math.isfinite(entry["valid_ce"]):
            save_checkpoint(self.out, self.model, self.encoding, self._meta())
        save_train_state(self.out, self._train_state(entry["seconds"]))
        from rtgen.train.plots import plot_losses

        plot_losses(self.history, self.out / "loss.png", title=self.config.genre)
        mark = " *" if improved else ""
        print(
            f"epoch {entry['epoch']}: train {entry['train_ce']:.4f} valid {entry['valid_ce']:.4f} nats/token "
            f"lr {entry['lr']:.2g} {entry['tokens_per_s']:,} tokens/s {entry['seconds'] / 60:.1f} min{mark}",
            flush=True,
        )

    def _meta(self) -> dict:
        best = min(self.history, key=lambda h: h["valid_ce"])
        return {
            "genre": self.config.genre,
            "genres": [d.name for d in self.data] if self.config.genres else [self.config.genre],
            "corpus": {d.name: d.summary for d in self.data},
            "train": to_dict(self.config),
            "metrics": {
                "valid_ce": best["valid_ce"],
                "best_epoch": best["epoch"],
                "epochs": len(self.history),
                "train_seconds": round(self.history[-1]["seconds"], 1),
                "train_tokens": sum(h["tokens"] for h in self.history),
                "ranks": self.world,
                "device": self.device.type,
            },
            "history": self.history,
        }

    def _train_state(self, seconds: float) -> dict:
        state = train_state(self.model, self.optimizer, self.history, seconds, self.sampler.get_state())
        return {**state, "steps": self.step_count}

    def _finish(self, reason: str, seconds: float) -> None:
        """Record how training ended in meta.json; drop the resume state of a finished run."""
        seconds += self.elapsed_before
        meta = record_finish(self.out, self.history, seconds, reason, parameters=parameter_count(self.model))
        print(f"{self.out}: best valid {meta['metrics']['valid_ce']:.4f} nats/token ({reason})", flush=True)

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train(config: TrainConfig, resume: bool = False, progress: bool = True, data=None) -> Path:
    """Run (or resume) training; returns the checkpoint folder holding the best model.

    ``data`` is ``(encoding, [GenreData])`` to train on given streams instead of
    loading ``config``'s corpora (tests, notebooks). ``--arch two-phase`` trains
    its genre RNNs and then its fusion LSTM (``rtgen.train.twophase``); ``--arch
    vae`` learns whole phrases, not next tokens (``rtgen.train.phrases``).
    """
    if config.arch == "vae":
        from rtgen.train.phrases import train_phrases

        return train_phrases(config, pick_device(config.device), resume=resume, progress=progress, data=data)
    if config.net.family == "two-phase":
        from rtgen.train.twophase import train_two_phase

        return train_two_phase(config, pick_device(config.device), resume=resume, progress=progress, data=data)
    trainer = Trainer(config, resume=resume, progress=progress, data=data)
    try:
        return trainer.run()
    finally:
        trainer.close()
