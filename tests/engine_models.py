"""Tiny random genre models saved as real checkpoints, shared by the engine, generate and fidelity tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtgen.encoding import EventEncoding
from rtgen.engine.controls import Controls
from rtgen.nets.checkpoint import save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM

GENRES = ("folk", "fiddle", "chorale")


def make_models(folder: Path, genres=GENRES, *, multi: bool = True, hidden: int = 24) -> Path:
    """Write ``folder/<genre>/`` checkpoints (and ``folder/multi/`` conditioned on ``genres``); returns folder."""
    encoding = EventEncoding()
    for index, genre in enumerate(genres):
        torch.manual_seed(index)
        model = RecurrentLM(NetConfig(vocab_size=len(encoding), embedding_dim=8, hidden_sizes=(hidden, hidden)))
        _bias_towards(model, encoding, 60 + 7 * index)
        save_checkpoint(folder / genre, model.eval(), encoding, {"genre": genre})
    if multi:
        torch.manual_seed(99)
        config = NetConfig(
            vocab_size=len(encoding), embedding_dim=8, hidden_sizes=(hidden, hidden), genre_count=len(genres)
        )
        model = RecurrentLM(config)
        save_checkpoint(folder / "multi", model.eval(), encoding, {"genre": "multi", "genres": list(genres)})
    return folder


def _bias_towards(model, encoding: EventEncoding, pitch: int) -> None:
    """Give each genre a recognisable taste: note-ons near ``pitch``, short shifts, some note-offs."""
    with torch.no_grad():
        bias = model.head.bias
        bias.fill_(-4.0)
        for p in range(pitch - 4, pitch + 5):
            bias[encoding.note_on_id(p)] = 1.0
        bias[encoding.off_base : encoding.off_base + 128] = 1.5
        bias[encoding.shift_base : encoding.shift_base + 6] = 1.0


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The engine sets torch to one thread for the process; give other test modules their setting back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class PatternEngine:
    """A steady stand-in for the models: notes of ``on_steps`` grid steps, one every ``on_steps + gap_steps``.

    Used where a test needs notes at known times (the stall) or notes that
    surely sound at a given moment (panic); the daemon around it is the real one.
    """

    keeps_bar_phase = False
    beats_to_section_end = None  # no form: expression counts 8-bar sections

    def __init__(self, genres, controls: Controls, *, on_steps: int, gap_steps: int) -> None:
        self.encoding = EventEncoding()
        self.genres = tuple(genres)
        self.device = "cpu"
        self.controls = controls
        self.on_steps, self.gap_steps = on_steps, gap_steps
        self.reset()

    def set_controls(self, **changes: object) -> Controls:
        self.controls = self.controls.replace(**changes)
        return self.controls

    def reset(self) -> None:
        enc = self.encoding
        self._tokens = []
        for pitch in (60, 64, 67, 72):
            self._tokens += [enc.note_on_id(pitch), *enc.shift_tokens(self.on_steps), enc.off_base + pitch]
            self._tokens += enc.shift_tokens(self.gap_steps)
        self._index = 0

    def prime(self, notes) -> None:
        self._index = 0

    def feed(self, tokens, *, performer: bool = False) -> None:
        return None

    def step(self) -> int:
        token = self._tokens[self._index % len(self._tokens)]
        self._index += 1
        return token


def pattern_factory(on_steps: int, gap_steps: int):
    def factory(genres, device, controls, seed):
        return PatternEngine(genres, controls, on_steps=on_steps, gap_steps=gap_steps)

    return factory
