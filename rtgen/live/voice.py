"""One stream of generated notes: tokens in, note messages at absolute clock beats out.

A ``Voice`` decodes the engine's tokens with the encoding's streaming decoder
and places them on the daemon's clock from ``start_beat``. It guarantees the
MIDI it emits is closed and bounded:

* a note sounding longer than ``max_note_beats`` gets its note-off then (the
  decoder's own later note-off for it is dropped);
* with an ``end_beat`` (a call-and-response answer), nothing starts at or after
  the end and everything still sounding ends there;
* leading silence (up to ``compress_beats``) before the first note is skipped,
  so an answer starts on its bar line rather than after the model's rest.
"""

from __future__ import annotations

import mido

from rtgen.encoding import Encoding, EventEncoding
from rtgen.live.listener import Heard


class Voice:
    """Generated notes from ``start_beat`` to ``end_beat`` (None: until silenced), on ``channel`` 0-15."""

    def __init__(
        self,
        encoding: Encoding,
        start_beat: float,
        end_beat: float | None,
        channel: int = 0,
        compress_beats: float = 4.0,
    ) -> None:
        self.encoding = encoding
        self.decoder = encoding.decoder()
        self.start_beat = start_beat
        self.end_beat = end_beat
        self.channel = channel
        self.compress_beats = compress_beats
        self.started = False  # a note-on has been emitted
        self.finished = False
        self._origin = start_beat  # absolute beat of the decoder's beat 0, fixed at the first note
        self._on_beats: dict[int, float] = {}  # pitch -> absolute beat of its note-on

    @property
    def origin(self) -> float:
        if self.started:
            return self._origin
        return self.start_beat - min(float(self.decoder.beat), self.compress_beats)

    @property
    def position(self) -> float:
        """The absolute beat the next generated event would fall on."""
        return self.origin + float(self.decoder.beat)

    @property
    def before_first_note(self) -> bool:
        """Still skipping the model's leading silence: no note yet, and time has not moved past the start."""
        return not self.started and self.position <= self.start_beat

    @property
    def sounding(self) -> frozenset[int]:
        return frozenset(self._on_beats)

    def advance(self, token: int, max_note_beats: float) -> list[tuple[float, mido.Message]]:
        """Feed one generated token; the note messages it causes, as (absolute beat, message)."""
        events = self.decoder.feed(token)
        if not self.started and any(e.on for e in events):
            # the first note falls on the start: a time-step token's note begins a step before the decoder's time
            first = min(float(e.beat) for e in events if e.on)
            self._origin = self.start_beat - min(first, self.compress_beats)
            self.started = True
        origin, out = self.origin, []
        for event in events:
            beat = origin + float(event.beat)
            if event.on:
                if self.end_beat is None or beat < self.end_beat:
                    self._on_beats[event.pitch] = beat
                    out.append((beat, self._message(event.pitch, event.velocity)))
            elif event.pitch in self._on_beats:
                del self._on_beats[event.pitch]
                out.append((self._clamp(beat), self._message(event.pitch, 0)))
        position = self.position
        for pitch, on_beat in list(self._on_beats.items()):
            if position - on_beat >= max_note_beats:
                del self._on_beats[pitch]
                out.append((self._clamp(on_beat + max_note_beats), self._message(pitch, 0)))
        if self.end_beat is not None and position >= self.end_beat:
            out.extend(self.close(self.end_beat))
        return out

    def catch_up(self, beat: float) -> bool:
        """If the voice fell behind ``beat`` (a stall, a late start), move it forward by whole grid steps.

        Later notes then come a little late instead of all at once; True when it moved.
        """
        behind = beat - self.position
        if behind <= 0:
            return False
        spb = self.encoding.steps_per_beat
        shift = -(-behind * spb // 1) / spb  # whole steps, rounded up
        self.start_beat += shift
        self._origin += shift
        if self.end_beat is not None:
            self.end_beat += shift
        return True

    def close(self, beat: float) -> list[tuple[float, mido.Message]]:
        """End the voice at ``beat``: note-offs for everything it still has sounding."""
        out = [(max(beat, on_beat), self._message(pitch, 0)) for pitch, on_beat in self._on_beats.items()]
        self._on_beats.clear()
        self.finished = True
        return out

    def steer(self, heard: Heard, engine) -> None:
        """Duet: feed the performer's note onset into the models at the voice's current step.

        The note lands where the generated stream stands (at most the lookahead
        after it was played); if the stream lags behind the note, silence is
        fed first (to the decoder too, so output and models keep one timeline).
        The models hear the onset as a note-on and its note-off at once, and
        never the performer's release: a model that believed the performer's
        notes still sounded would wait for them to end, as a melody model
        waits out its own note (measured: rtgen fell silent under a dense
        performer). Only event encodings carry a note without advancing time.
        """
        encoding = self.encoding
        if not isinstance(encoding, EventEncoding) or not heard.on:
            return
        tokens: list[int] = []
        behind_steps = round((heard.beat - self.position) * encoding.steps_per_beat)
        if self.started and behind_steps > 0:
            tokens.extend(encoding.shift_tokens(behind_steps))
            for token in tokens:
                self.decoder.feed(token)
        tokens += [encoding.note_on_id(heard.pitch), encoding.off_base + heard.pitch]
        engine.feed(tokens, performer=True)

    def _clamp(self, beat: float) -> float:
        return beat if self.end_beat is None else min(beat, self.end_beat)

    def _message(self, pitch: int, velocity: int) -> mido.Message:
        kind = "note_on" if velocity > 0 else "note_off"
        return mido.Message(kind, channel=self.channel, note=pitch, velocity=velocity)
