"""Sections composed, not copied: they end at cadences, are stated again with variation, and depart and return.

On whenever ``repeat`` > 0, for event-token models (a chord or time-step
stream has no note-on to vary). Before, a section ended where the models
sampled SEP or, most often, where an 8-bar cap cut it mid-phrase, and was then
played again note for note: bars 9-16 copied bars 1-8 in 18 of 24 pieces.

* **Cadences.** A section ends at the bar line after an *arrival*: notes
  struck together on a strong beat (beat 1 or 3) that sound the key's tonic
  or dominant triad (``is_arrival``), from its last nominal bar
  (``SECTION_BARS``) on, or from the moment the models sample SEP (where they
  end a piece; after the section's first bar). A later strong beat that is no
  arrival takes the close back. Past the section's length (or the models'
  SEP) those triads' note-ons are boosted on strong beats (``SEEK_BOOST``);
  a section still open ``OVER_BARS`` later is cut at the bar line ("cap").
* **Key held.** On a strong beat, the tonic triad's note-ons are boosted
  (``HOLD_BOOST``) while rtgen has lately sounded it on strong beats less
  often than its genres do (``FormProfile.tonic_beats``). Sampled freely, a
  fiddle section changed key signature between bars 1-4 and 5-8 in 44 % of
  sections against 9-15 % of real ones: in tune, but no longer home.
* **Echoes.** Inside a section, motifs return as in its genres' corpora: as
  it opens, the section draws for each of its bars whether it states an
  earlier bar again and which (``FormProfile.echoes``, per bar the share of a
  corpus's 8-bar spans whose bar states that earlier bar again: a fiddle
  tune's bar 3 its bar 1 in 45 % of tunes); an echo goes on to the next bar
  with its lag's odds (``FormProfile.echo_runs``: a fiddle tune's bars 5-8
  state bars 1-4 again as a phrase). At such a bar line the earlier
  bar is queued, as it was or varied as a restatement's bars are (the
  genres' own share at ``variation`` 0.5: ``FormProfile.echo_literal``), with
  no SEP (the phrase goes on); then the models continue. Sampled freely, a generated strain
  hardly ever returned to a motif (repeated 8-note share 0.10 against real
  fiddle tunes' 0.47), the feature that told 8 bars apart most.
* **Restatement.** A section just ended is stated again with its genres'
  odds (``FormProfile.restate``, from their corpora): the models hear SEP,
  then its bars but the last, each bar either as it was or varied (1 up to a
  share ``NOTE_SHARE`` of its note-ons replaced by other pitches the models choose
  within ``VARY_SEMITONES``, their note-offs following, the rhythm kept),
  then a second ending: one bar sampled freely with the tonic triad boosted
  on its strong beats (``HOME_BOOST``). ``variation`` sets the share of
  varied bars: 0 plays the section again note for note (no second ending),
  0.5 the genres' own share (1 - ``FormProfile.literal``), 1 every bar with
  every note. A section not stated again is followed by the next with no SEP.
* **Register.** Any other new section keeps the register the stream is in:
  its note-ons are pulled toward the running mean pitch of rtgen's notes (the
  seed's or the call's at first) with a Gaussian ``REGISTER_SPREADS`` times
  as wide as its genres' spread (``FormProfile.spread``, the deviation of a
  corpus's pitches within 8 bars): sampled freely, a fiddle tune wandered over
  a wider range than real ones, the feature that told it apart most after
  repetition (``rtgen eval music``'s per-feature AUC).
* **Departure and return.** After a restated section (an A), the next new
  section (a B) departs: its note-ons are pulled ``DEPART_SEMITONES`` away from
  A's mean pitch (``pull``, which the engine applies keeping the note-ons'
  total: a pull moves a note to another pitch, never to a rest), and the lookback copies
  only from within it. When B ends, A comes back (varied as a restatement is,
  with its second ending), and the next section starts afresh.

Per token this costs a few comparisons; the boosts touch about 30 note-on
values, on strong beats only; a section's pull (register or departure) is
built once per section and costs two sums and two multiplies over the 128
note-on values a sampled step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from rtgen.data.profile import FormProfile
from rtgen.engine.form import Lookback
from rtgen.engine.restating import after_steps, restatement, varied_share
from rtgen.engine.sampling import SCALES

BAR_BEATS = 4  # sections are counted in bars of 4/4 from the section's first step
SECTION_BARS = 8  # a section's nominal length: from its last bar on, an arrival closes it
OVER_BARS = 2  # bars a section may run past its length looking for an arrival before it is cut
MIN_SECTION_BARS = 2  # a shorter section (the models ended it at once) is not stated again
SEEK_BOOST = 4.0  # tonic and dominant chord note-ons on a strong beat, once a section has run its length
HOME_BOOST = 8.0  # tonic chord note-ons on a strong beat of a second ending
HOLD_BOOST = 3.0  # tonic chord note-ons on any other strong beat while rtgen sounds the tonic triad there less
# often than its genres do (``FormProfile.tonic_beats``): the models alone drift to the dominant or subdominant key
TONIC_MEMORY = 1 / 8  # weight of each strong-beat onset in that running share (about the last eight: four bars of
# a melody, one of a four-voice chorale)
NOTE_SHARE = 0.25  # of a re-sampled bar's notes, 1 up to this share change (all at variation 1): the bar varies,
# still recognisable (real fiddle tunes: 10-13 % of bars within a quarter of their notes of an earlier one, the
# measure of rtgen.evaluate.bars.varies; drawn note by note, a third of varied bars changed more and were new)
VARY_SEMITONES = 4  # a re-sampled note lies at most this far from the note it replaces
VARY_WIDTH = 2.0  # semitones: the lean of a re-sampled note toward the one it replaces (a Gaussian's deviation)
ARRIVAL_SHARE = 0.75  # notes of an arrival that must be of its triad
DEPART_SEMITONES = 5.0  # a B section's register centre lies this far from its A's mean pitch
DEPART_WIDTH = 9.0  # semitones: how wide that pull is
REGISTER_SPREADS = 2.0  # a section's register pull is this many of its genres' spreads wide (a Gaussian's deviation)
REGISTER_MEMORY = 1 / 16  # weight of each new onset in the running register centre (about the last 16 notes)


def chord_classes(key: tuple[int, str]) -> tuple[frozenset[int], frozenset[int]]:
    """Pitch classes of ``key``'s tonic and dominant triads (degrees 1-3-5, and 5, the scale's 7th and 2)."""
    tonic, scale = key
    steps = SCALES[scale]
    home = frozenset((tonic + s) % 12 for s in (steps[0], steps[2], steps[4]))
    return home, frozenset((tonic + s) % 12 for s in (7, steps[-1], 2))


def is_arrival(pitches: Sequence[int], key: tuple[int, str]) -> bool:
    """Whether notes struck together sound ``key``'s tonic or dominant triad: a place to close.

    Their lowest and highest note are of the triad and at least three quarters
    of them (a single note: that note; four voices: one may pass or suspend).
    """
    if not pitches:
        return False
    low, high = min(pitches) % 12, max(pitches) % 12
    for chord in chord_classes(key):
        inside = sum(1 for p in pitches if p % 12 in chord)
        if low in chord and high in chord and inside >= ARRIVAL_SHARE * len(pitches):
            return True
    return False


class Sections:
    """The form of the stream since the last reset: the section under way, and what is queued to restate."""

    def __init__(self, encoding, draw: Callable[[], float]) -> None:
        self.encoding = encoding
        self.draw = draw  # a uniform number in [0, 1) from the engine's seeded generator
        self.bar_steps = BAR_BEATS * encoding.steps_per_beat
        self.profile = FormProfile()
        self.variation = 0.5
        self.key: tuple[int, str] | None = None
        self.stable: list[int] = []  # note-on tokens of the key's tonic and dominant chord tones
        self.home_tokens: list[int] = []  # ... of its tonic chord tones
        self.ends: list[tuple[float, str]] = []  # (beats from the first section's start, why it ended)
        self.pull = np.ones(128, dtype=np.float32)  # [pitch] the section's note-on pull (``leaning``: not all 1)
        self.leaning = False
        # running mean pitch of rtgen's onsets (the seed's or call's at first); kept across a reset, as the music
        # goes on in its register when the blend moves
        self.centre: float | None = None
        self.home_classes: frozenset[int] = frozenset()  # the key's tonic triad, as pitch classes
        # running share of rtgen's strong-beat onsets on the tonic triad; kept across a reset, as ``centre`` is
        self.tonic = self.profile.tonic_beats
        self.reset()

    def reset(self) -> None:
        self.start: int | None = None  # stream position of the section's first step; None: the next sampled one
        self.start_steps = 0  # the stream's time then
        self.origin: int | None = None  # the first section's start, in grid steps (a piece's beat 0)
        self.queue: list[tuple[int, bool]] = []  # the restatement still to play, the next entry last
        self.mapping: dict[int, int] = {}  # pitch of a restated note -> the pitch re-sampled for it
        self.ending_pending = False  # a second ending follows the queue
        self.ending_until: int | None = None  # grid step where the second ending under way closes
        self.close_at: int | None = None  # bar line where the section closes after its arrival
        self.echoes: list[tuple[int, int]] = []  # (bar, earlier bar it states again) still ahead, latest first
        self.echoing = False  # the queue is an echo: the section goes on after it
        self.seek_from = self.boost_from = self.cap_at = 0  # grid steps: arrivals close / are boosted / cut
        self.models_ended = False  # the models sampled SEP in this section
        self.group_step, self.group = -1, []  # the latest onset step of rtgen's own and its pitches
        self.home: tuple[list[int], int, float] | None = None  # a restated A: its tokens, bars, mean pitch
        self.departure = 0.0  # register centre of a B section under way; 0 = none
        self.sections = 0  # sections opened since the reset
        self.ends.clear()
        self.pull[:], self.leaning = 1.0, False

    def set_form(self, profile: FormProfile, variation: float) -> None:
        """The weighted genres' form profile and the ``variation`` control (0-1), from the next section end on."""
        self.profile, self.variation = profile, variation

    def set_key(self, key: tuple[int, str]) -> None:
        if key == self.key:
            return
        self.key = key
        home, dominant = chord_classes(key)
        self.home_classes = home
        self.home_tokens = [t for p in range(128) if p % 12 in home for t in self.encoding.pitch_tokens(p)]
        self.stable = [t for p in range(128) if p % 12 in home | dominant for t in self.encoding.pitch_tokens(p)]

    # ---- a sampled step ----

    def mark(self, position: int, now: int, key: tuple[int, str]) -> bool:
        """Before a sampled step at grid step ``now`` in ``key``; True when it opens a new section."""
        self.set_key(key)
        if self.ending_pending:
            self.ending_pending, self.ending_until = False, now + self.bar_steps
        if self.ending_until is not None:
            if now < self.ending_until:
                return False
            self.ending_until = None
        if self.start is not None:
            return False
        self.start, self.start_steps, self.close_at = position, now, None
        self.echoes = self._plan()
        self.seek_from = now + (SECTION_BARS - 1) * self.bar_steps
        self.boost_from = now + SECTION_BARS * self.bar_steps
        self.cap_at = now + (SECTION_BARS + OVER_BARS) * self.bar_steps
        self.models_ended = False
        self.origin = now if self.origin is None else self.origin
        self.sections += 1
        self.departure = 0.0
        self.pull[:], self.leaning = 1.0, False
        if self.home is not None:
            mean = self.home[2]
            self.departure = mean + (DEPART_SEMITONES if mean < 72 else -DEPART_SEMITONES)
            self._lean(self.departure, DEPART_WIDTH)
        elif self.centre is not None:
            self._lean(self.centre, REGISTER_SPREADS * self.profile.spread)
        return True

    def _lean(self, centre: float, width: float) -> None:
        """Pull the section's note-ons toward ``centre`` (a MIDI pitch) with a Gaussian ``width`` semitones wide."""
        self.pull[:] = [math.exp(-0.5 * ((p - centre) / width) ** 2) for p in range(128)]
        self.leaning = True

    def lean(self, ons: np.ndarray) -> None:
        """The section's pull on the note-on probabilities ``ons`` [128], in place, keeping their total: a pull
        moves a note to a nearer pitch; scaling them alone had it rest instead (a tiny model went silent)."""
        before = float(ons.sum())
        ons *= self.pull
        after = float(ons.sum())
        if after > 0:
            ons *= before / after

    def begin(self, pitches: Sequence[int]) -> None:
        """Afresh after the phrase ``pitches`` primed the stream: its mean pitch is the register the first section
        keeps, and the key is taken as held."""
        self.reset()
        self.tonic = self.profile.tonic_beats
        if pitches:
            self.centre = sum(pitches) / len(pitches)

    def onset(self, now: int, pitch: int) -> None:
        """rtgen struck ``pitch`` at grid step ``now`` (sampled or restated). The tonic share counts a section's own
        notes, its echoes included; a restatement's were counted when they were first played."""
        if now != self.group_step:
            self._judge()
            self.group_step, self.group = now, []
        self.group.append(pitch)
        if self.start is not None and self._strong(now):
            self.tonic += ((pitch % 12 in self.home_classes) - self.tonic) * TONIC_MEMORY
        self.centre = pitch if self.centre is None else self.centre + (pitch - self.centre) * REGISTER_MEMORY

    def _judge(self) -> None:
        """Whether the finished onset group closes the section under way: an arrival once it may close.

        A strong beat struck after an arrival, before the close, and not an
        arrival itself, takes the close back: the section's last strong beat
        must be where it arrives.
        """
        step = self.group_step
        if self.start is None or self.ending_until is not None or not self.group or self.key is None:
            return
        if step < self.seek_from or not self._strong(step):
            return
        if is_arrival(self.group, self.key):
            if self.close_at is None:
                self.close_at = self.start_steps + ((step - self.start_steps) // self.bar_steps + 1) * self.bar_steps
        elif self.close_at is not None and step < self.close_at:
            self.close_at = None

    def _strong(self, step: int) -> bool:
        return (step - self.start_steps) % (self.bar_steps // 2) == 0

    def _next_bar(self, now: int) -> int:
        return self.start_steps + -(-(now - self.start_steps) // self.bar_steps) * self.bar_steps

    def room(self, now: int) -> int:
        """Grid steps time may move before the section's close or its second ending's end (a huge number if none)."""
        until = self.ending_until if self.ending_until is not None else self.close_at
        if self.echoes:
            at = self.start_steps + self.echoes[-1][0] * self.bar_steps
            until = at if until is None else min(until, at)
        return max(1, until - now) if until is not None else 1 << 30

    def steer(self, values: list[float], now: int) -> None:
        """Boost the key's chords on a strong beat where nothing has been struck yet: holding the key, seeking a
        cadence, or ending."""
        if now == self.group_step or not self._strong(now):
            return
        if self.ending_until is not None:
            tokens, boost = self.home_tokens, HOME_BOOST
        elif self.start is not None and self.close_at is None and now >= self.boost_from:
            tokens, boost = self.stable, SEEK_BOOST
        elif self.start is not None and self.tonic < self.profile.tonic_beats:
            tokens, boost = self.home_tokens, HOLD_BOOST
        else:
            return
        for token in tokens:
            values[token] *= boost

    def closes(self, now: int, models_end: bool) -> str | None:
        """Why the section under way ends at ``now`` ("cadence", "cap"), or None when it goes on.

        The models sampling SEP (after the section's first bar) start the search
        for an arrival at once, boosted from the next strong beat.
        """
        if self.start is None or self.ending_until is not None or now - self.start_steps < self.bar_steps:
            return None
        if models_end and not self.models_ended:
            self.models_ended = True
            self.seek_from = self.boost_from = min(self.seek_from, now)
            self.cap_at = min(self.cap_at, self._next_bar(now) + OVER_BARS * self.bar_steps)
        if self.group_step < now:
            self._judge()
        if self.close_at is not None and now >= self.close_at:
            return "cadence"
        return "cap" if now >= self.cap_at else None

    def close(self, values: list[float], now: int, models_end: bool, lookback: Lookback) -> int | None:
        """Before a sampled step: steer ``values`` toward a close, and where the section closes, end it (its tokens
        are ``lookback``'s since its start) and return the first queued token; None when it goes on, or after a
        close with nothing queued (a new section then follows at once)."""
        self.steer(values, now)
        why = self.closes(now, models_end)
        if why is not None:
            return self.end(self._section(lookback), now, why)
        if self.echoes and now >= self.start_steps + self.echoes[-1][0] * self.bar_steps:
            return self.echo(self._section(lookback), self.echoes.pop()[1])
        return None

    def _section(self, lookback: Lookback) -> list[int]:
        """The section's tokens so far (copied only where it ends or echoes, not every sampled step)."""
        return lookback.tokens[max(0, self.start - lookback.base) :] if self.start is not None else []

    def _plan(self) -> list[tuple[int, int]]:
        """The bars of a new section that state an earlier bar again, drawn with its genres' odds, latest first: an
        echo under way goes on to the next bar with its lag's odds ``echo_runs`` (a phrase comes back, not one bar
        of it)."""
        shares, runs, plan = self.profile.echoes, self.profile.echo_runs, []
        for bar in range(1, SECTION_BARS if shares else 1):  # () for a genre never measured: no echoes
            lag = plan[-1][0] - plan[-1][1] if plan and plan[-1][0] == bar - 1 else 0
            going = 0 < lag <= len(runs) and self.draw() < runs[lag - 1]
            earlier = plan[-1][1] + 1 if going else self._begun(shares, bar)
            if earlier is not None:
                plan.append((bar, earlier))
        return plan[::-1]

    def _begun(self, shares: Sequence[float], bar: int) -> int | None:
        """The earlier bar that ``bar`` begins to state again, drawn from ``shares``, or None."""
        target, running = self.draw(), 0.0
        for earlier in range(bar):
            running += shares[bar * (bar - 1) // 2 + earlier]
            if running > target:
                return earlier
        return None

    def echo(self, section: Sequence[int], bar: int) -> int | None:
        """The first token of ``bar`` (from 0) of the section (its tokens so far ``section``) queued again, varied
        as a restatement's bars are; None when it held no token."""
        self.echoing, self.mapping = True, {}
        tokens = after_steps(self.encoding, section, bar * self.bar_steps)
        share = varied_share(self.variation, self.profile.echo_literal)
        varied = {0} if self.variation > 0 and self.draw() < share else set()
        body = restatement(self.encoding, tokens, self.bar_steps, self.bar_steps, varied, self._pick_notes)
        self.queue = body[::-1]
        return self.queue.pop()[0] if self.queue else None

    def end(self, section: Sequence[int], now: int, why: str) -> int | None:
        """Close the section (its tokens ``section``) at ``now``: the first token of what is queued, or None.

        A restatement is queued after the shift to the bar line and SEP, so the
        models hear the section begin again as a piece begins; a new section
        follows with no SEP (after one, the models began a fresh piece: a
        chorale went on in one voice).
        """
        enc, elapsed = self.encoding, now - self.start_steps
        bars = max(1, -(-elapsed // self.bar_steps))
        self.ends.append(((self.start_steps + bars * self.bar_steps - self.origin) / enc.steps_per_beat, why))
        body: list[tuple[int, bool]] = []
        if self.departure == 0.0 and bars >= MIN_SECTION_BARS and self.draw() < self.profile.restate:
            body = self._restated(list(section), bars)
            self.home = (list(section), bars, _mean_pitch(enc, section)) if self.home is None else self.home
        elif self.home is not None and self.departure:
            body = self._restated(*self.home[:2])
            self.home = None
        head = enc.shift_tokens(-elapsed % self.bar_steps) + ([enc.sep_id] if body else [])
        self.queue = ([(t, False) for t in head] + body)[::-1]
        self.start, self.departure, self.mapping = None, 0.0, {}
        self.echoes, self.echoing = [], False
        return self.queue.pop()[0] if self.queue else None

    def _restated(self, tokens: list[int], bars: int) -> list[tuple[int, bool]]:
        """A section again: every bar at variation 0; else all but the last (a share re-sampled), a second ending."""
        if self.variation <= 0:
            return restatement(self.encoding, tokens, bars * self.bar_steps, self.bar_steps, set())
        share = varied_share(self.variation, self.profile.literal)
        varied = {bar for bar in range(bars - 1) if self.draw() < share}
        self.ending_pending = True
        steps = (bars - 1) * self.bar_steps
        return restatement(self.encoding, tokens, steps, self.bar_steps, varied, self._pick_notes)

    def _pick_notes(self, count: int) -> set[int]:
        """Which of a varied bar's ``count`` note-ons are re-sampled: 1 up to a ``NOTE_SHARE`` of them (at most a
        quarter of an 8-note bar's notes edited: the measure that found its genres' varied bars, though a
        re-sampled note can still land on its own pitch where no other is allowed); past ``variation`` 0.625 that
        share grows, to every note at 1."""
        share = max(NOTE_SHARE, 2 * self.variation - 1)
        most = max(1, int(share * count))
        if most >= count:
            return set(range(count))
        changed = most if share > NOTE_SHARE else 1 + int(self.draw() * most)
        return set(sorted(range(count), key=lambda _: self.draw())[:changed])

    # ---- a restated step ----

    def restated(self, values_of: Callable[[], list[float]], draw: Callable[[], float]) -> int:
        """The next restated token; a note to re-sample is chosen near its original from ``values_of()``."""
        token, replaced = self.queued()
        return token if replaced is None else self.vary(values_of(), replaced, draw())

    def queued(self) -> tuple[int, int | None]:
        """The next restated token, and the pitch it replaces when it is to be re-sampled (else None)."""
        token, vary = self.queue.pop()
        enc = self.encoding
        if vary:
            return token, token - enc.on_base
        if enc.off_base <= token < enc.shift_base and token - enc.off_base in self.mapping:
            return enc.off_base + self.mapping.pop(token - enc.off_base), None
        return token, None

    def vary(self, values: list[float], pitch: int, draw: float) -> int:
        """A note-on near ``pitch`` chosen from the models' ``values`` (the original when none is allowed)."""
        enc = self.encoding
        near = range(max(0, pitch - VARY_SEMITONES), min(127, pitch + VARY_SEMITONES) + 1)
        weights = [values[enc.on_base + p] * math.exp(-0.5 * ((p - pitch) / VARY_WIDTH) ** 2) for p in near]
        weights[pitch - near.start] = 0.0  # a re-sampled note changes
        total = sum(weights)
        chosen = pitch
        if total > 0:
            target, running = draw * total, 0.0
            for p, weight in zip(near, weights, strict=True):
                running += weight
                if running > target:
                    chosen = p
                    break
        if chosen != pitch:
            self.mapping[pitch] = chosen
        return enc.on_base + chosen


def _mean_pitch(encoding, tokens: Sequence[int]) -> float:
    pitches = [t - encoding.on_base for t in tokens if encoding.on_base <= t < encoding.off_base]
    return sum(pitches) / len(pitches) if pitches else 60.0
