"""Training curves as PNG files (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path


def plot_losses(history: list[dict], path: str | Path, title: str = "") -> Path:
    """Train and validation cross-entropy (nats/token) per epoch, written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(epochs, [h["train_ce"] for h in history], marker="o", label="train")
    axes.plot(epochs, [h["valid_ce"] for h in history], marker="o", label="validation")
    if history:  # the checkpoint kept: early stopping lands on the best validation epoch
        best = min(history, key=lambda h: h["valid_ce"])
        axes.axvline(best["epoch"], color="grey", linestyle="--", label=f"kept: epoch {best['epoch']}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("cross-entropy (nats/token)")
    axes.set_title(f"{title} loss" if title else "loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
