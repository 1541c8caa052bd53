"""Which torch device a run or the engine uses: one rule for training, the daemon and generation.

``auto`` means CUDA when torch sees a GPU, else the CPU. A distributed
training rank asks for its own GPU by ``local_rank``.
"""

from __future__ import annotations

import torch

from rtgen.errors import RtgenError


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:local_rank`` when available, else CPU; ``cpu``/``cuda[:N]`` as asked (no GPU is an error)."""
    if device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and device.split(":")[0] != "cuda":
        raise RtgenError(f"device {device!r} is not one of auto, cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RtgenError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(device)
