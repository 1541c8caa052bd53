"""Where rtgen finds shipped models and presets, and keeps its cache, config and recordings.

Shipped models and presets live at the top of the source tree (``models/``,
``presets/``) and are installed as package data under ``rtgen/_shipped``; the
environment variables let a user point elsewhere without editing anything.
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


def models_dir() -> Path:
    return Path(os.environ.get("RTGEN_MODELS", _shipped("models")))


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
