"""Where rtgen finds shipped models and presets, and keeps its cache, config and recordings.

Shipped models and presets live at the top of the source tree (``models/``,
``presets/``) and are installed as package data under ``rtgen/_shipped``; the
environment variables let a user point elsewhere without editing anything.
``RTGEN_MODELS`` adds a folder of the user's own models beside the shipped
ones (a model of the same name there wins); ``RTGEN_SHIPPED_MODELS`` moves the
shipped ones (packagers; tests that want only their own models).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """The source tree's folder when running from a checkout, else the installed copy."""
    in_checkout = _PACKAGE.parent / name
    return in_checkout if in_checkout.is_dir() else _PACKAGE / "_shipped" / name


ZOO = "zoo"  # a models folder's subfolder for the seed papers' networks (models/zoo/NAME, docs/zoo.md)


def shipped_models_dir() -> Path:
    return Path(os.environ.get("RTGEN_SHIPPED_MODELS", _shipped("models")))


def shipped_zoo_dir() -> Path:
    """The seed papers' trained networks, shipped beside the genre models and found by name like them."""
    return shipped_models_dir() / ZOO


def user_models_dir() -> Path | None:
    """The user's own models (``RTGEN_MODELS``), searched before the shipped ones; None when unset."""
    value = os.environ.get("RTGEN_MODELS")
    return Path(value) if value else None


def models_dirs() -> list[Path]:
    """Where a model is looked up by name, first match first: the user's folder, then the shipped one."""
    user = user_models_dir()
    return [user, shipped_models_dir()] if user is not None else [shipped_models_dir()]


def models_dir() -> Path:
    """Where rtgen writes model files (the genre classifier): the user's folder when set, else the shipped one."""
    return user_models_dir() or shipped_models_dir()


def presets_dir() -> Path:
    return Path(os.environ.get("RTGEN_PRESETS", _shipped("presets")))


def cache_dir() -> Path:
    return Path(os.environ.get("RTGEN_CACHE_DIR", platformdirs.user_cache_dir("rtgen")))


def config_dir() -> Path:
    return Path(os.environ.get("RTGEN_CONFIG_DIR", platformdirs.user_config_dir("rtgen")))


def recordings_dir() -> Path:
    return Path(os.environ.get("RTGEN_RECORDINGS", platformdirs.user_music_dir())) / "rtgen"


def state_dir() -> Path:
    """Logs of the running daemon (``rtgen run`` writes the daemon's output here while a UI has the terminal)."""
    return Path(os.environ.get("RTGEN_STATE_DIR", platformdirs.user_state_dir("rtgen")))
