"""The phrase VAE at work: variations of a call, live and offline, and interpolation between two phrases.

``PhraseModel`` turns notes into the VAE's two-bar grid and back: a call is
cut into two-bar chunks from its bar line, each chunk quantised to sixteenths
and reduced to its top line (the VAE is monophonic), encoded to the mean of
its latent distribution, and latent points decode to the likeliest token per
step. ``VariationEngine`` puts that behind the engine's stepping interface
(``prime``/``feed``/``step``/``reset``/``set_controls``, as
``rtgen.engine.warm.Engine``), so the player, the daemon and ``rtgen
generate`` play a VAE unchanged: ``prime`` with the performer's call encodes
it, and each ``step`` hands out the next token of a variation of it, decoded
two bars at a time in the thread that steps (the engine thread live, never
the output thread). Temperature is the spread: a variation decodes
z = mu + temperature * eps, eps ~ N(0, I), so the spread is in units of the
prior's standard deviation (0.1: nearly the call itself; 1: as far as
phrases lie from one another; 2: far). With nothing primed the centre is the
prior's, 0: free phrases. The pitch range of the controls is honoured when
decoding; the token-level controls (scale lock, top-k/p, density...) are not,
as no token distribution is sampled. A VAE plays alone: it has no next-token
distribution to fuse with other models.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import torch
from torch import Tensor

from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import Note, quantise
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import CheckpointError, LoadedModel, read_meta, resolve
from rtgen.nets.vae import is_vae_meta


def is_vae(name_or_path: str | Path) -> bool:
    """True when ``name_or_path`` names a phrase-VAE checkpoint (read from its meta.json alone)."""
    try:
        meta = read_meta(resolve(name_or_path))
    except CheckpointError:
        return False
    return is_vae_meta(meta)


class PhraseModel:
    """A loaded phrase VAE with its encoding: notes <-> two-bar grids <-> latent points."""

    def __init__(self, loaded: LoadedModel) -> None:
        if not isinstance(loaded.encoding, TimeStepEncoding):
            raise RtgenError(f"a phrase VAE reads time-step phrases, not {loaded.encoding.name!r} tokens")
        self.model = loaded.model.eval()
        self.encoding: TimeStepEncoding = loaded.encoding
        self.steps = self.model.config.phrase_steps
        self.beats = Fraction(self.steps, self.encoding.steps_per_beat)  # length of one phrase in beats

    def grid(self, notes: Sequence[Note]) -> list[int]:
        """Time-step tokens of ``notes`` (beats from 0) on one phrase's grid: the top line, cut at the end."""
        enc, steps = self.encoding, self.steps
        grid = [enc.rest_id] * steps
        for note in sorted(quantise(notes, enc.steps_per_beat), key=lambda n: (n.start, n.pitch)):
            on, off = int(note.start * enc.steps_per_beat), int(note.end * enc.steps_per_beat)
            if on >= steps:
                continue
            grid[on : min(off, steps)] = [enc.pitch_base + note.pitch] + [enc.hold_id] * (min(off, steps) - on - 1)
            while off < steps and grid[off] == enc.hold_id:  # an earlier, longer note ends where this one does
                grid[off] = enc.rest_id
                off += 1
        return grid

    def chunks(self, notes: Sequence[Note]) -> list[list[Note]]:
        """``notes`` (beats from a bar line) cut into phrases, each counted from its own start; at least one."""
        count = 1 + max((int(n.start // self.beats) for n in notes), default=0)
        cut: list[list[Note]] = [[] for _ in range(count)]
        for note in notes:
            k = int(note.start // self.beats)
            cut[k].append(Note(note.start - k * self.beats, note.pitch, note.duration, note.velocity))
        return cut

    @torch.inference_mode()
    def means(self, notes: Sequence[Note]) -> Tensor:
        """The latent mean of each phrase of ``notes``, [phrases, latent_dim] on the model's device."""
        grids = torch.tensor([self.grid(chunk) for chunk in self.chunks(notes)], device=self.model.device)
        return self.model.encode(grids)[0]

    @torch.inference_mode()
    def decode(self, z: Tensor, pitch_range: tuple[int, int] = (0, 127)) -> list[list[int]]:
        """The likeliest phrase of tokens for each latent point [n, latent_dim]; note-ons only in ``pitch_range``."""
        probabilities = self.model.decode(z.to(self.model.device)).clone()
        low, high = (self.encoding.pitch_base + p for p in pitch_range)
        probabilities[..., self.encoding.pitch_base : low] = -1.0
        probabilities[..., high + 1 :] = -1.0
        choice = probabilities[..., self.encoding.rest_id :].argmax(-1) + self.encoding.rest_id
        return choice.tolist()

    def notes(self, phrases: Sequence[Sequence[int]]) -> list[Note]:
        """Phrases of tokens played one after another, as notes in beats from 0."""
        return self.encoding.decode([token for phrase in phrases for token in phrase])

    def vary(self, notes: Sequence[Note], spread: float, generator: torch.Generator | None = None) -> list[Note]:
        """A variation of ``notes``, phrase by phrase: each decoded from mean + ``spread`` * N(0, I)."""
        means = self.means(notes).cpu()
        noise = torch.randn(means.shape, generator=generator)
        return self.notes(self.decode(means + spread * noise))

    def interpolate(self, first: Sequence[Note], last: Sequence[Note], count: int) -> list[Note]:
        """``count`` >= 2 phrases decoded at even points from ``first``'s mean to ``last``'s, ends included.

        Each input is read as its first phrase (two bars from beat 0).
        """
        if count < 2:
            raise RtgenError(f"interpolation needs at least 2 phrases (the two ends), got {count}")
        a, b = self.means(first)[0].cpu(), self.means(last)[0].cpu()
        along = torch.linspace(0.0, 1.0, count)[:, None]
        return self.notes(self.decode(a + along * (b - a)))


class VariationEngine:
    """A phrase VAE that plays like the engine: ``prime`` with a call, ``step`` out variations of it.

    Each call's phrases are varied in turn, over and over (a four-bar call
    gives variations of bars 1-2, then 3-4, then 1-2 again...), each new
    variation drawn with the temperature of that moment. ``feed`` takes
    tokens and ignores them: a variation depends on the call alone.
    """

    keeps_bar_phase = True  # its phrases sit on the call's bar grid: a voice must not skip their leading rest
    beats_to_section_end = None  # no sections: expression counts 8-bar ones (rtgen.live.hooks.TokenEngine)

    def __init__(
        self, name: str, phrases: PhraseModel, settings: Controls | None = None, seed: int | None = None
    ) -> None:
        self.phrases = phrases
        self.encoding = phrases.encoding
        self.device = phrases.model.device
        self.genres = (name,)
        settings = settings or Controls()
        self._latest = settings if settings.weights else settings.replace(weights={name: 1.0})
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()  # a fresh random seed
        else:
            self.generator.manual_seed(seed)
        self._means: Tensor | None = None  # [phrases, latent] of the call; None: the prior's centre
        self._next = 0  # the call's phrase the next variation varies
        self._queue: deque[int] = deque()

    @classmethod
    def from_names(
        cls, names: Sequence[str], device: str = "cpu", settings: Controls | None = None, seed: int | None = None
    ) -> VariationEngine:
        """The VAE named (by installed name or path) as the only model, on ``device``."""
        from rtgen.engine.warm import EngineError
        from rtgen.nets.checkpoint import load_model
        from rtgen.nets.device import pick_device

        if len(names) != 1:
            raise EngineError(
                f"a vae plays alone: it answers with whole phrases, and has no token distribution to fuse with "
                f"{len(names) - 1} other model(s); give it as the only model"
            )
        loaded = load_model(names[0], device=str(pick_device(device)), kind="vae")
        path = Path(names[0])
        name = names[0] if len(path.parts) == 1 and not path.suffix else loaded.meta.get("genre") or path.name
        return cls(str(name), PhraseModel(loaded), settings, seed)

    @property
    def controls(self) -> Controls:
        return self._latest

    def set_controls(self, **changes: object) -> Controls:
        """Validate and take new controls (temperature and pitch range shape the next variation)."""
        self._latest = self._latest.replace(**changes)
        return self._latest

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def reset(self) -> None:
        """Forget the call: the next phrases come from the prior's centre."""
        self._means, self._next = None, 0
        self._queue.clear()

    def prime(self, notes: Sequence[Note]) -> None:
        """Take ``notes`` (beats from a bar line) as the call, and decode the first variation of it now."""
        self.reset()
        if notes:
            self._means = self.phrases.means(notes).cpu()
        self._refill()

    def feed(self, tokens: Sequence[int], *, performer: bool = False) -> None:
        """Nothing to advance: a variation is of the primed call, whatever was played since."""

    def step(self) -> int:
        """The next token of the current variation (a new variation is decoded when one runs out)."""
        if not self._queue:
            self._refill()
        return self._queue.popleft()

    def _refill(self) -> None:
        latent = self.phrases.model.config.latent_dim
        if self._means is None:
            centre = torch.zeros(latent)
        else:
            centre = self._means[self._next % len(self._means)]
            self._next += 1
        controls = self._latest
        z = centre + controls.temperature * torch.randn(latent, generator=self.generator)
        self._queue.extend(self.phrases.decode(z[None], (controls.pitch_min, controls.pitch_max))[0])
