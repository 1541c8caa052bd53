"""The one-composer and genre papers' encoding: one token per onset, a note or a chord's pitch set.

The papers read a piece with music21 as a list of ``Note`` and ``Chord``
objects (the notes that start together), map each distinct one to an integer
and drop the rarest; time is left out and the output is played at a fixed
step (0.5 beat, or random offsets of 0.1-0.9 in the genre paper). A fixed
step turns every melody into even eighths, so here each onset token also
carries how long it lasts until the next onset, chosen from ``LENGTHS``
(twelfths of a beat: sixteenths, triplets, dotted values, up to a whole 4
beats): ``60.64.67:1/2`` is a C major chord lasting half a beat. Folding the
length into the token keeps the papers' "one token per onset" (their windows
of 75 and 100 tokens still span 75 and 100 onsets) and keeps rtgen's rhythm
exact on the grid. A span no single length fits is its first token plus hold
tokens ``_:d`` (the sounding notes go on for ``d`` beats); silence between
onsets is rest tokens ``r:d``. Every note of an onset ends where the next
onset begins or where its own longest note ends, whichever is first (the
papers keep no durations at all); velocity is not encoded.

The vocabulary is built from the training split (with its transposed copies):
onset tokens seen fewer than ``min_count`` times are dropped, and each dropped
one is encoded as its nearest kept onset token of the same length (fewest
pitches added or removed, then the closest top and bottom pitch), so time is
never lost and no token means "unknown". When no onset of that length was
kept it becomes a hold of that length. PAD, SEP and the rests and holds of
every length are always in the vocabulary. The kept onset tokens are saved in
``to_json()`` (``vocabulary``), so a checkpoint rebuilds the encoding without
its corpus; ``rtgen.data.vocabulary`` builds and names encodings.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction

from rtgen.encoding import PAD, SEP, EncodingError, Note, NoteEvent, _decode_all, _StreamDecoder, quantise

STEPS_PER_BEAT = 12  # grid steps per beat: sixteenths (3 steps) and triplet eighths (4 steps) both fit
LENGTHS = (1, 2, 3, 4, 6, 8, 9, 12, 18, 24, 36, 48)  # onset, hold and rest lengths in grid steps
MIN_COUNT = 10  # onset tokens seen fewer times in the training streams are dropped
REST, HOLD = "r", "_"

Meaning = tuple[tuple[int, ...] | None, int]  # (pitches, () for a rest, None for a hold; length in steps)


class ChordEncoding:
    """PAD, SEP, rests and holds of every length, then the corpus's kept onset tokens (see the module docstring).

    A token's meaning is ``(pitches, length in steps)``: pitches rise, ``()``
    is a rest, None a hold. ``vocabulary`` (the kept onset tokens' names) is
    None until the encoding is built from a corpus (``with_counts``); such an
    encoding can list a piece's raw meanings but not encode it.
    """

    name = "chord"

    def __init__(
        self,
        steps_per_beat: int = STEPS_PER_BEAT,
        lengths: Sequence[int] = LENGTHS,
        min_count: int = MIN_COUNT,
        vocabulary: Sequence[str] | None = None,
    ) -> None:
        self.steps_per_beat, self.min_count = steps_per_beat, min_count
        self.lengths = tuple(sorted({int(length) for length in lengths}))
        if not self.lengths or self.lengths[0] != 1:
            raise EncodingError(f"chord lengths {list(lengths)} must include 1 step, so that every span fits")
        self.vocabulary = None if vocabulary is None else tuple(vocabulary)
        structural: list[Meaning] = [(pitches, length) for pitches in ((), None) for length in self.lengths]
        onsets = [self.parse(name) for name in self.vocabulary or ()]
        if any(not pitches for pitches, _ in onsets):
            raise EncodingError("a chord vocabulary lists a rest or hold among its onset tokens")
        self.meanings: list[Meaning] = [((), 0), ((), 0), *structural, *onsets]  # PAD and SEP first
        self.tokens: tuple[str, ...] = (PAD, SEP, *(self.token_name(*m) for m in self.meanings[2:]))
        self.pad_id, self.sep_id = 0, 1
        self.rest_base = 2  # the rest of lengths[i] has id rest_base + i
        self.hold_base = self.rest_base + len(self.lengths)
        self.onset_base = self.hold_base + len(self.lengths)
        self.rest_id = self.rest_base  # the shortest rest: what the engine plays to close an over-long note
        self._ids = {meaning: i for i, meaning in enumerate(self.meanings) if i >= self.rest_base}
        if len(self._ids) != len(self.tokens) - self.rest_base:
            raise EncodingError("a chord vocabulary lists a token twice")
        self._by_length: dict[int, list[int]] = {}  # length -> the onset tokens of that length
        self._sounding: list[list[int]] = [[] for _ in range(128)]  # pitch -> the onset tokens sounding it
        for token in range(self.onset_base, len(self.tokens)):
            pitches, length = self.meanings[token]
            self._by_length.setdefault(length, []).append(token)
            for pitch in pitches:
                self._sounding[pitch].append(token)
        self._nearest: dict[Meaning, int] = {}  # dropped meaning -> its kept stand-in, filled as met

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def fitted(self) -> bool:
        """True once the vocabulary is built (from a corpus or a saved checkpoint)."""
        return self.vocabulary is not None

    # --- token names -------------------------------------------------------------------------------------

    def token_name(self, pitches: tuple[int, ...] | None, length: int) -> str:
        """``60.64.67:1/2`` (an onset), ``r:1/2`` (a rest, pitches ``()``) or ``_:1/2`` (a hold, None)."""
        head = HOLD if pitches is None else ".".join(map(str, pitches)) if pitches else REST
        return f"{head}:{Fraction(length, self.steps_per_beat)}"

    def parse(self, name: str) -> Meaning:
        """The meaning of a token name; a one-line ``EncodingError`` for anything else."""
        head, _, beats = name.rpartition(":")
        try:
            steps = Fraction(beats) * self.steps_per_beat
            pitches = None if head == HOLD else () if head == REST else tuple(int(p) for p in head.split("."))
        except (ValueError, ZeroDivisionError):
            raise EncodingError(f"{name!r} is not a chord token (like 60.64.67:1/2, r:1 or _:1/4)") from None
        if steps.denominator != 1 or int(steps) not in self.lengths:
            raise EncodingError(f"{name!r}: length {beats} beats is not one of the encoding's lengths")
        if pitches and (list(pitches) != sorted(set(pitches)) or not 0 <= pitches[0] <= pitches[-1] <= 127):
            raise EncodingError(f"{name!r}: pitches must rise, each within 0-127")
        return pitches, int(steps)

    # --- notes <-> meanings ------------------------------------------------------------------------------

    def grid_meanings(self, notes: Iterable[Note]) -> list[Meaning]:
        """Token meanings, before any vocabulary (rare onsets included), of notes already on this grid.

        ``notes`` must be ``quantise(notes, steps_per_beat)``'s output (or a
        ``melody_line`` of it): quantising is most of the cost, so it is done once.
        """
        groups: dict[int, list[tuple[int, int]]] = {}  # onset step -> [(pitch, end step)]
        for note in notes:
            on = int(note.start * self.steps_per_beat)
            groups.setdefault(on, []).append((note.pitch, on + int(note.duration * self.steps_per_beat)))
        onsets = sorted(groups)
        meanings: list[Meaning] = []
        now = 0
        for i, on in enumerate(onsets):
            meanings += self._spans((), on - now)
            end = max(end for _, end in groups[on])
            now = min(end, onsets[i + 1]) if i + 1 < len(onsets) else end
            meanings += self._spans(tuple(sorted(p for p, _ in groups[on])), now - on)
        return meanings

    def _spans(self, pitches: tuple[int, ...], steps: int) -> list[Meaning]:
        """``steps`` as tokens, longest lengths first: the onset (or rest), then holds (or rests)."""
        meanings: list[Meaning] = []
        while steps > 0:
            length = self.lengths[bisect.bisect_right(self.lengths, steps) - 1]
            meanings.append((pitches if not meanings or not pitches else None, length))
            steps -= length
        return meanings

    def canonical(self, notes: Iterable[Note]) -> list[Note]:
        """The notes as a round trip returns them when every onset is kept: each note of an onset lasts
        to the next onset or to the onset's longest note, whichever is first, at the default velocity."""
        groups: dict[Fraction, list[Note]] = {}
        for note in quantise(notes, self.steps_per_beat):
            groups.setdefault(note.start, []).append(note)
        onsets = sorted(groups)
        result = []
        for i, start in enumerate(onsets):
            end = max(n.end for n in groups[start])
            end = min(end, onsets[i + 1]) if i + 1 < len(onsets) else end
            result += [Note(start, n.pitch, end - start) for n in groups[start]]
        return sorted(result)

    # --- the vocabulary ----------------------------------------------------------------------------------

    def with_counts(self, counts: Counter[Meaning]) -> ChordEncoding:
        """This encoding with its vocabulary: the onsets counted at least ``min_count`` times, fewest pitches first."""
        kept = sorted((m for m, count in counts.items() if count >= self.min_count and m[0]), key=_onset_order)
        return ChordEncoding(self.steps_per_beat, self.lengths, self.min_count, [self.token_name(*m) for m in kept])

    def token_id(self, meaning: Meaning) -> int:
        """The id of a meaning: its own token when kept, else the nearest kept onset of the same length."""
        found = self._ids.get(meaning)
        if found is not None:
            return found
        if not self.fitted:
            raise EncodingError("this chord encoding has no vocabulary yet: it is built from a training corpus")
        if meaning not in self._nearest:
            self._nearest[meaning] = self._nearest_kept(*meaning)
        return self._nearest[meaning]

    def _nearest_kept(self, pitches: tuple[int, ...], length: int) -> int:
        """Fewest pitches added or removed, then the closest top pitch, then bottom; a hold when none fits."""
        candidates = self._by_length.get(length)
        if not candidates:
            return self.hold_base + self.lengths.index(length)
        wanted = set(pitches)

        def distance(token: int) -> tuple[int, int, int, int]:
            other = self.meanings[token][0]
            changed = len(wanted.symmetric_difference(other))
            return changed, abs(pitches[-1] - other[-1]), abs(pitches[0] - other[0]), token

        return min(candidates, key=distance)

    def transposed_id(self, token: int, semitones: int) -> int:
        """``token`` transposed by ``semitones``: the shifted onset's id, or its nearest kept one.

        Exact for kept tokens whose shifted form is kept; a pitch pushed out of
        0-127 leaves the token as it is (the corpus never shifts that far).
        """
        if token < self.onset_base:
            return token
        moved = shifted(self.meanings[token], semitones)
        return token if moved is None else self.token_id(moved)

    # --- the encoding interface --------------------------------------------------------------------------

    def encode(self, notes: Iterable[Note]) -> list[int]:
        """Token ids for notes quantised to this grid; dropped onsets become their nearest kept ones."""
        return [self.token_id(meaning) for meaning in self.grid_meanings(quantise(notes, self.steps_per_beat))]

    def decoder(self, collect_notes: bool = False) -> ChordDecoder:
        return ChordDecoder(self, collect_notes)

    def decode(self, tokens: Iterable[int]) -> list[Note]:
        return _decode_all(self.decoder(collect_notes=True), tokens)

    def is_note_on(self, token: int) -> bool:
        return token >= self.onset_base

    def note_on_id(self, pitch: int) -> int:
        raise EncodingError(
            f"the chord encoding has no one note-on token for pitch {pitch}: a pitch sounds in many onset "
            "tokens (pitch_tokens lists them)"
        )

    def pitch_tokens(self, pitch: int) -> list[int]:
        """Ids of every onset token that sounds ``pitch`` (what a pitch range or scale lock must mask)."""
        return list(self._sounding[pitch])

    def note_count(self, token: int) -> int:
        """Notes the token starts: the size of its pitch set; 0 for PAD, SEP, rests and holds."""
        return len(self.meanings[token][0]) if token >= self.onset_base else 0

    def shift_tokens(self, steps: int) -> list[int]:
        """Rest tokens lasting ``steps`` grid steps in all (silence), longest lengths first."""
        return [self._ids[meaning] for meaning in self._spans((), steps)]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "steps_per_beat": self.steps_per_beat,
            "lengths": list(self.lengths),
            "min_count": self.min_count,
            "vocabulary": None if self.vocabulary is None else list(self.vocabulary),
            "tokens": list(self.tokens),
        }


def shifted(meaning: Meaning, semitones: int) -> Meaning | None:
    """A meaning transposed by ``semitones``; None when a pitch leaves 0-127. Rests and holds stay as they are."""
    pitches, length = meaning
    if not pitches:
        return meaning
    moved = tuple(p + semitones for p in pitches)
    return (moved, length) if moved[0] >= 0 and moved[-1] <= 127 else None


def _onset_order(meaning: Meaning) -> tuple:
    return len(meaning[0]), meaning


class ChordDecoder(_StreamDecoder):
    """Streams chord tokens into note events; any token sequence yields valid MIDI.

    An onset token closes what sounds and starts its pitches, a rest closes
    what sounds, a hold does neither; each then moves time on by its length.
    """

    def feed(self, token: int) -> list[NoteEvent]:
        if (framed := self._framing(token)) is not None:
            return framed
        enc, state, out = self.encoding, self.state, []
        pitches, length = enc.meanings[token]
        if pitches is not None:
            out = state.close_all()
            for pitch in pitches:
                state.note_on(pitch, out)
        state.now_steps += length
        return out
