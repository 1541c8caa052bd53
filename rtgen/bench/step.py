"""The fused-step benchmark behind ``rtgen bench step``: warm-state stepping against the papers' windowed approach.

A fused step is what the daemon pays per token: fuse K genre models'
logits, mask, sample, and advance every model's warm state by the chosen
token (``Engine.step``). The papers instead re-ran a window of the last 100
tokens through each model's sequence forward for every new token; the
benchmark times both on the same models and reports the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rtgen.engine.latency import time_engine_steps, time_fused_steps
from rtgen.live.timing import summary_ms

WINDOW_TOKENS = 100  # the papers' context window


def bench_models(count: int, device: str, net_config=None) -> list:
    """``count`` models on ``device``: the installed genre models when there are enough, else random ones.

    Random weights of the shipped config time exactly like trained ones.
    """
    import torch

    from rtgen.encoding import EventEncoding
    from rtgen.nets.checkpoint import LoadedModel, genre_models, load_model
    from rtgen.nets.config import NetConfig
    from rtgen.nets.recurrent import RecurrentLM

    shipped = genre_models()
    if len(shipped) >= count:
        return [load_model(name, device=device) for name in shipped[:count]]
    encoding = EventEncoding()
    config = net_config or NetConfig(vocab_size=len(encoding), embedding_dim=64, hidden_sizes=(256, 256))
    models = []
    for index in range(count):
        torch.manual_seed(index)
        model = RecurrentLM(config).to(device).eval()
        models.append(LoadedModel(model, encoding, {"genre": f"random{index}"}))
    return models


def time_windowed_steps(models: Sequence, steps: int) -> list[float]:
    """Seconds per token when every token re-runs a 100-token window through each model's forward."""
    import torch

    from rtgen.engine.fusion import fuse_probs, weight_vector
    from rtgen.engine.sampling import choose

    device = models[0].model.device
    vocab = len(models[0].encoding)
    generator = torch.Generator().manual_seed(0)
    window = torch.randint(2, vocab, (1, WINDOW_TOKENS), generator=generator).to(device)
    weights = weight_vector(torch.arange(1, len(models) + 1, dtype=torch.float32)).to(device)
    timings = []
    with torch.inference_mode():
        for index in range(steps + 3):
            tick = time.perf_counter()
            logits = torch.stack([m.model(window)[0][0, -1] for m in models])
            token = choose(fuse_probs(logits, weights, "mixture", 1.0).cpu(), "sample", generator)
            window = torch.roll(window, -1, dims=1)
            window[0, -1] = token
            if index >= 3:  # the first calls pay for kernel selection
                timings.append(time.perf_counter() - tick)
    return timings


def time_variation_steps(steps: int, device: str = "cpu") -> list[float]:
    """Seconds per ``VariationEngine.step`` of a random phrase VAE (default shape, time-step vocabulary).

    Most steps hand out a token already decoded; one in ``phrase_steps`` decodes the next variation, so the p99
    is the decode the engine thread pays once a phrase.
    """
    import torch

    from rtgen.data.timestep import TimeStepEncoding
    from rtgen.engine.variation import PhraseModel, VariationEngine
    from rtgen.nets.checkpoint import LoadedModel
    from rtgen.nets.vae import PhraseVAE, VaeConfig

    encoding = TimeStepEncoding()
    torch.manual_seed(0)
    model = PhraseVAE(VaeConfig(vocab_size=len(encoding))).to(device).eval()
    engine = VariationEngine("vae", PhraseModel(LoadedModel(model, encoding, {})), seed=0)
    engine.prime([])
    return time_engine_steps(engine, steps)


def arch_rows(names: Sequence[str], steps: int, device: str = "cpu") -> list[dict]:
    """One row per named architecture (random weights, event vocabulary): one model's ``Engine.step`` p50/p99.

    The first row is the shipped network (``rnn``, 2 x 256) timed in the same
    run, the baseline each ``ratio`` (p50 over the baseline's p50) is taken against.
    The phrase VAE has no token step; its row times ``time_variation_steps``.
    """
    import torch

    from rtgen.encoding import EventEncoding
    from rtgen.nets.architectures import architecture, build_model
    from rtgen.nets.checkpoint import LoadedModel
    from rtgen.nets.config import NetConfig
    from rtgen.nets.vae import VAE_FAMILY

    encoding = EventEncoding()
    configs = {"shipped (rnn 2 x 256)": NetConfig(vocab_size=len(encoding), embedding_dim=64, hidden_sizes=(256, 256))}
    for name in names:
        net = architecture(name).net
        configs[name] = None if name == VAE_FAMILY else NetConfig(vocab_size=len(encoding), embedding_dim=64, **net)
    rows = []
    for name, config in configs.items():
        if config is None:
            seconds = time_variation_steps(steps, device)
        else:
            torch.manual_seed(0)
            model = LoadedModel(build_model(config).to(device).eval(), encoding, {"genre": name})
            seconds = time_fused_steps([model], steps)
        ms = {key: round(value, 3) for key, value in summary_ms(seconds).items() if key != "max_ms"}
        rows.append({"arch": name, "device": device, "steps": steps, **ms})
    for row in rows:
        row["ratio"] = round(row["p50_ms"] / rows[0]["p50_ms"], 1)
    return rows


def step_rows(
    model_counts: Sequence[int], devices: Sequence[str], steps: int, windowed_steps: int, net_config=None
) -> list[dict]:
    """One row per (models, device): fused p50/p99, windowed p50/p99 (ms), and the speedup of p50s.

    ``net_config``: the network to time when the shipped models are not installed.
    """
    import torch

    from rtgen.engine.form import FORM_CONTROLS

    rows = []
    for device in devices:
        for count in model_counts:
            models = bench_models(count, device, net_config)
            fused = summary_ms(time_fused_steps(models, steps))
            form = summary_ms(time_fused_steps(models, steps, **FORM_CONTROLS))
            windowed = summary_ms(time_windowed_steps(models, windowed_steps))
            config = models[0].model.config
            rows.append(
                {
                    "models": count,
                    "device": device,
                    "hidden_sizes": list(config.hidden_sizes),
                    "trained": "genre" in models[0].meta and not models[0].meta["genre"].startswith("random"),
                    "threads": torch.get_num_threads(),
                    "steps": steps,
                    "p50_ms": round(fused["p50_ms"], 4),
                    "p99_ms": round(fused["p99_ms"], 4),
                    "form_p50_ms": round(form["p50_ms"], 4),  # with the presets' repeat and key_prior
                    "form_p99_ms": round(form["p99_ms"], 4),
                    "windowed_steps": windowed_steps,
                    "windowed_p50_ms": round(windowed["p50_ms"], 3),
                    "windowed_p99_ms": round(windowed["p99_ms"], 3),
                    "speedup": round(windowed["p50_ms"] / fused["p50_ms"], 1),
                }
            )
    return rows
