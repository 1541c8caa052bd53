"""Which models an engine plays together, and where: genre names, the multi-genre and two-phase models, the device."""

from __future__ import annotations

from pathlib import Path

from rtgen.encoding import EncodingError, check_same_vocabulary
from rtgen.engine.derived import MODEL_METHODS
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import LoadedModel


class EngineError(RtgenError):
    """Models that cannot play together (another vocabulary, a missing genre model)."""


def same_vocabulary(encoding, loaded, genre: str, first: str) -> None:
    try:
        check_same_vocabulary(encoding.to_json(), loaded.encoding.to_json())
    except EncodingError as error:
        raise EngineError(f"model {genre!r} cannot play with {first!r}: {error}") from None


def optional_model(name: str | None, method: str, device: str, encoding=None) -> LoadedModel | None:
    """The model ``method`` plays: ``name`` (a name or path), None, or "auto" (the installed one when there is one).

    "auto" passes over an installed model on another vocabulary than ``encoding`` (the genre models'), so a
    time-step or chord genre model still plays when the shipped event-vocabulary ``multi`` is installed.
    Naming the installed model when none is installed is refused in one line that says what the model is.
    """
    from rtgen.nets.checkpoint import find_model, load_model, read_meta, resolve

    installed, what = MODEL_METHODS[method]
    if name == "auto":
        name = installed if find_model(installed) is not None else None
        try:
            if name is not None and encoding is not None:
                check_same_vocabulary(encoding.to_json(), read_meta(resolve(name))["encoding"])
        except EncodingError:
            name = None
    elif name == installed and find_model(installed) is None and not Path(name).exists():
        raise EngineError(f"method {method!r} needs {what}; none is installed")
    return load_model(name, device=device) if name is not None else None


def genre_name(name_or_path: str, meta: dict) -> str:
    path = Path(name_or_path)
    if len(path.parts) == 1 and not path.suffix:
        return str(name_or_path)
    return str(meta.get("genre") or (path.parent.name if path.suffix else path.name))
