"""Checkpoints that describe themselves, and loading that never unpickles.

A checkpoint is a folder: ``model.safetensors`` (the weights, plain tensors)
and ``meta.json`` beside it (genre, encoding vocabulary, net and training
config, corpus, metrics, versions, creation time), so a model rebuilds from
the folder alone. Models live in ``<models folder>/<name>/`` and load by name,
from the user's folder (``RTGEN_MODELS``) first, then the shipped one. Resume
state for an interrupted training run (optimizer, epoch, random generators)
lives in ``train_state.pt``, read with
``torch.load(weights_only=True)``, which refuses anything but tensors and
plain containers.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rtgen import __version__
from rtgen.config import ConfigError, from_dict, to_dict
from rtgen.data.vocabulary import encoding_from_json
from rtgen.encoding import Encoding, EncodingError, check_same_vocabulary
from rtgen.errors import RtgenError
from rtgen.paths import ZOO, models_dirs, shipped_models_dir, shipped_zoo_dir

WEIGHTS = "model.safetensors"
META = "meta.json"
TRAIN_STATE = "train_state.pt"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
CONDITIONAL_MODEL = "multi"  # the multi-genre model's folder; the engine's ``conditional`` method plays it


class CheckpointError(RtgenError):
    """A checkpoint that is missing, unsafe, damaged or made for another vocabulary."""


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # RecurrentLM, a window model (rtgen.nets.architectures) or a PhraseVAE, in eval mode on the device
    encoding: Encoding
    meta: dict


def save_checkpoint(folder: str | Path, model, encoding: Encoding, meta: dict) -> Path:
    """Write weights (float32) and meta.json into ``folder``; returns the weights path.

    ``meta`` adds to the fields written here (genre, corpus, train config,
    metrics...); the net config, encoding and versions always come from the
    model and encoding themselves.
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in model.state_dict().items()}
    weights = folder / WEIGHTS
    partial = weights.with_suffix(".partial")
    save_file(state, str(partial))
    partial.replace(weights)
    full_meta = {
        **meta,
        "config": to_dict(model.config),
        "encoding": encoding.to_json(),
        "parameters": sum(t.numel() for t in state.values()),
        "rtgen_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_meta(folder, full_meta)
    return weights


def write_meta(folder: str | Path, meta: dict) -> None:
    path = Path(folder) / META
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(meta, indent=2) + "\n")  # key order kept: genre tables are ordered
    partial.replace(path)


def resolve(path_or_name: str | Path) -> Path:
    """The weights file for a folder, a weights file, or a shipped model's genre name."""
    path = Path(path_or_name)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: refusing a pickle checkpoint ({path.suffix}); rtgen loads only safetensors")
    if path.is_dir():
        path = path / WEIGHTS
    elif not path.exists() and len(path.parts) == 1 and not path.suffix:
        folder = find_model(str(path_or_name))
        if folder is None:
            installed = ", ".join(model.name for model in installed_folders(zoo=True)) or "none"
            raise CheckpointError(f"no model named {str(path_or_name)!r} (installed: {installed})")
        path = folder / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    return path


def _check_safetensors(path: Path) -> None:
    """Refuse pickles and truncated or damaged files before any parser sees them."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(9)
        if len(head) < 9:
            raise CheckpointError(f"{path}: truncated ({size} bytes), not a safetensors file")
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:2] == b"PK"):
            raise CheckpointError(f"{path}: a pickle/torch.save file, not safetensors; refusing to load it")
        if header_len > size - 8:
            raise CheckpointError(f"{path}: truncated or not safetensors (header of {header_len} bytes, file {size})")
        try:
            header = json.loads(head[8:] + handle.read(header_len - 1))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: not safetensors (damaged header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged safetensors header")
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end != size:
        raise CheckpointError(f"{path}: truncated ({size} bytes, header promises {8 + header_len + end})")


def read_meta(weights: Path) -> dict:
    meta_path = weights.parent / META
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{meta_path}: missing; a checkpoint needs its meta.json") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{meta_path}: not valid JSON ({error})") from None
    for key in ("config", "encoding"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: no {key!r} entry")
    return meta


def load_model(
    path_or_name: str | Path,
    device: str = "cpu",
    expect_encoding: Encoding | None = None,
    kind: Literal["token", "vae"] | None = "token",
) -> LoadedModel:
    """Rebuild a model from a checkpoint folder, weights file or shipped genre name.

    Refuses pickles, truncated files, (with ``expect_encoding``) a model
    trained on another vocabulary, and a model of another ``kind`` than asked
    (``"token"``: a next-token model the engine steps; ``"vae"``: a phrase VAE,
    ``rtgen.nets.vae``; None: either), each with a one-line ``CheckpointError``.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from rtgen.nets.architectures import build_model
    from rtgen.nets.config import NetConfig
    from rtgen.nets.vae import PhraseVAE, VaeConfig, is_vae_meta

    weights = resolve(path_or_name)
    _check_safetensors(weights)
    meta = read_meta(weights)
    is_vae = is_vae_meta(meta)
    if kind is not None and is_vae != (kind == "vae"):
        found, wanted = ("a phrase VAE", "a next-token model") if is_vae else ("a next-token model", "a phrase VAE")
        raise CheckpointError(f"{weights.parent}: {found}, where {wanted} is needed")
    try:
        encoding = encoding_from_json(meta["encoding"])
        if expect_encoding is not None:
            check_same_vocabulary(expect_encoding.to_json(), meta["encoding"])
        config = from_dict(VaeConfig if is_vae else NetConfig, meta["config"], f"{weights.parent / META} config")
    except (EncodingError, ConfigError) as error:
        raise CheckpointError(f"{weights.parent}: {error}") from None
    if config.vocab_size != len(encoding):
        raise CheckpointError(
            f"{weights.parent}: net predicts {config.vocab_size} tokens, encoding has {len(encoding)}"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except SafetensorError as error:
        raise CheckpointError(f"{weights}: cannot read weights ({error})") from None
    state = {name: t.float() if t.is_floating_point() else t for name, t in state.items()}  # shipped float16 widened
    model = PhraseVAE(config) if is_vae else build_model(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise CheckpointError(f"{weights}: weights do not fit the config ({first})") from None
    model.to(torch.device(device)).eval()
    return LoadedModel(model, encoding, meta)


@dataclass(frozen=True)
class Installed:
    """One installed model folder: its name, where it is, and the shipped folder of that name it hides, if any."""

    name: str
    folder: Path
    hides: Path | None = None

    @property
    def shipped(self) -> bool:
        return self.folder.parent.resolve() in (shipped_models_dir().resolve(), shipped_zoo_dir().resolve())


def installed_folders(zoo: bool = False) -> list[Installed]:
    """Every model folder (one holding weights or meta.json) in the shipped and the user's folder, sorted by name.

    A name in both is the user's model, hiding the shipped one. ``zoo``: each folder's ``zoo/`` too (the seed
    papers' networks, ``rtgen models --ship``), below the folder itself on a clash. They load by name
    (``find_model``) but are not genres: the default genre set, evaluations and the classifier leave them out.
    """
    found: dict[str, Installed] = {}
    folders = [place for root in reversed(models_dirs()) for place in ((root / ZOO, root) if zoo else (root,))]
    roots = list(dict.fromkeys(root.resolve() for root in folders if root.is_dir()))
    for root in roots:  # shipped first: the user's folder then takes over a clash
        for folder in sorted(p for p in root.iterdir() if (p / WEIGHTS).exists() or (p / META).exists()):
            hidden = found.get(folder.name)
            found[folder.name] = Installed(folder.name, folder, hidden.folder if hidden else None)
    return sorted(found.values(), key=lambda model: model.name)


def find_model(name: str) -> Path | None:
    """The folder of the installed model ``name`` (the user's before the shipped one), or None."""
    return next((model.folder for model in installed_folders(zoo=True) if model.name == name), None)


def check_model(folder: Path) -> str | None:
    """Why the checkpoint in ``folder`` cannot be used (one line), or None when it loads and its shapes fit."""
    try:
        load_model(folder, kind=None)
    except CheckpointError as error:
        return str(error)
    return None


def installed_models() -> list[tuple[str, dict]]:
    """(name, meta) for every installed model whose meta.json reads, sorted by name."""
    found = []
    for model in installed_folders():
        try:
            found.append((model.name, read_meta(model.folder / WEIGHTS)))
        except CheckpointError:
            continue
    return found


def genre_models() -> list[str]:
    """Installed genre models that can fuse, sorted by name: the one rule for the default genres of
    ``rtgen run``, ``rtgen generate``, ``rtgen eval music`` and ``rtgen bench step``.

    The user's and the shipped ones, each a folder with meta.json; phrase VAEs
    and genre-conditioned models (the conditional and two-phase ones) are not
    genres. Only models of one vocabulary fuse, so the default keeps those
    sharing the shipped models' encoding (else the first model's); the others
    play by name. A model whose meta.json does not read is kept, so that
    loading it names what is wrong. Empty when there is none.
    """
    from rtgen.nets.twophase import TWO_PHASE_MODEL
    from rtgen.nets.vae import is_vae_meta

    encodings: dict[str, tuple[str | None, bool] | None] = {}
    for model in installed_folders():
        if model.name in (CONDITIONAL_MODEL, TWO_PHASE_MODEL) or not (model.folder / META).exists():
            continue
        try:
            meta = read_meta(model.folder / WEIGHTS)
        except CheckpointError:
            encodings[model.name] = None
            continue
        if not is_vae_meta(meta) and not meta["config"].get("genre_count"):
            encodings[model.name] = (meta["encoding"].get("name"), model.shipped)
    shipped = [kind[0] for kind in encodings.values() if kind and kind[1]]
    first = next((kind[0] for kind in encodings.values() if kind), None)
    chosen = shipped[0] if shipped else first
    return [name for name, kind in encodings.items() if kind is None or kind[0] == chosen]


def save_train_state(folder: str | Path, state: dict) -> None:
    """Resume state (model and optimizer tensors, counters, generators) written atomically."""
    import torch

    path = Path(folder) / TRAIN_STATE
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def load_train_state(folder: str | Path) -> dict | None:
    """The saved resume state, or None; loaded with ``weights_only=True`` so it cannot run code."""
    import pickle

    import torch

    path = Path(folder) / TRAIN_STATE
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"{path}: cannot resume from it ({str(error).splitlines()[0]})") from None
