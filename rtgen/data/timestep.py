"""The ESAC paper's time-step encoding: one token per grid step, a MIDI pitch, hold ``_`` or rest ``r``.

Kept to reproduce that paper's setup (and the phrase VAE's, which reads whole
grids of it); the default is the event encoding (``rtgen.encoding``), whose
interface this one implements.
"""

from __future__ import annotations

from collections.abc import Iterable

from rtgen.encoding import PAD, SEP, EncodingError, Note, NoteEvent, _decode_all, _StreamDecoder, quantise


class TimeStepEncoding:
    """The ESAC paper's encoding: one token per grid step, a pitch, hold ``_`` or rest ``r``.

    Monophonic: overlapping notes are refused. Velocity is not encoded; decoded
    notes carry ``DEFAULT_VELOCITY``.
    """

    name = "timestep"
    fitted = True  # the vocabulary is fixed

    def __init__(self, steps_per_beat: int = 4) -> None:
        self.steps_per_beat = steps_per_beat
        self.tokens: tuple[str, ...] = (PAD, SEP, "r", "_", *(str(p) for p in range(128)))
        self.pad_id, self.sep_id, self.rest_id, self.hold_id = 0, 1, 2, 3
        self.pitch_base = 4

    def __len__(self) -> int:
        return len(self.tokens)

    def note_on_id(self, pitch: int) -> int:
        return self.pitch_base + pitch

    def is_note_on(self, token: int) -> bool:
        return token >= self.pitch_base

    def note_count(self, token: int) -> int:
        return int(self.is_note_on(token))

    def pitch_tokens(self, pitch: int) -> list[int]:
        return [self.pitch_base + pitch]

    def shift_tokens(self, steps: int) -> list[int]:
        """Rest tokens, one a step: time moves on and what sounded ends."""
        return [self.rest_id] * steps

    def transposed_id(self, token: int, semitones: int) -> int:
        """A pitch token moved by ``semitones``; any other token, or a pitch pushed out of 0-127, as it is."""
        moved = token + semitones
        return moved if token >= self.pitch_base and self.pitch_base <= moved < self.pitch_base + 128 else token

    def canonical(self, notes: Iterable[Note]) -> list[Note]:
        """The notes exactly as a round trip returns them: on the grid, at the default velocity."""
        return [Note(n.start, n.pitch, n.duration) for n in quantise(notes, self.steps_per_beat)]

    def encode(self, notes: Iterable[Note]) -> list[int]:
        tokens: list[int] = []
        for note in quantise(notes, self.steps_per_beat):
            on = int(note.start * self.steps_per_beat)
            if on < len(tokens):
                raise EncodingError(f"time-step encoding is monophonic; notes overlap at beat {note.start}")
            tokens.extend([self.rest_id] * (on - len(tokens)))
            tokens.append(self.pitch_base + note.pitch)
            tokens.extend([self.hold_id] * (int(note.duration * self.steps_per_beat) - 1))
        return tokens

    def decoder(self, collect_notes: bool = False) -> TimeStepDecoder:
        return TimeStepDecoder(self, collect_notes)

    def decode(self, tokens: Iterable[int]) -> list[Note]:
        return _decode_all(self.decoder(collect_notes=True), tokens)

    def to_json(self) -> dict:
        return {"name": self.name, "steps_per_beat": self.steps_per_beat, "tokens": list(self.tokens)}


class TimeStepDecoder(_StreamDecoder):
    """Streams time-step tokens into note events; every token but PAD and SEP lasts one step."""

    def feed(self, token: int) -> list[NoteEvent]:
        if (framed := self._framing(token)) is not None:
            return framed
        enc, state, out = self.encoding, self.state, []
        if token == enc.rest_id:
            out = state.close_all()
        elif token >= enc.pitch_base:
            out = state.close_all()
            state.note_on(token - enc.pitch_base, out)
        state.now_steps += 1
        return out
