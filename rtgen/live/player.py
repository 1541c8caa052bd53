"""The engine thread: the one owner of the music state (engine, listener, modes, lookahead).

Everything that changes what rtgen plays happens here, between engine steps:
commands (``rtgen.daemon.commands``: typed values from OSC, the disk worker
and the port watcher) arrive on a ``queue.SimpleQueue`` and are applied at the
top of each tick, at most ``max_commands_per_tick`` a tick so a flood never
starves generation; no lock is ever shared. Each tick:

1. applies queued commands;
2. learns what the output thread sent or is about to send (echo filter, roll,
   counts): before the input, so an echo is never judged before its send;
3. takes stamped input messages (clock, CC, notes), at most
   ``max_inputs_per_s`` a second (the rest wait in the port's bounded queue,
   which drops and counts what arrives while it is full), and routes them; in
   duet at most ``max_steer_onsets_per_beat`` of the performer's onsets go
   into the models (each costs an engine step), so a flood never starves
   generation;
4. ends the performer's notes held past the listener's limit, and asks it
   whether a phrase just ended (call-and-response answers it);
5. generates tokens while the voice's time is less than the lookahead ahead
   of now, decoding them to note events at absolute beats, which expression
   (``rtgen.live.expression``: the ``expression`` and ``swing`` controls,
   and the section end the engine's form reports) turns into played
   velocities and beats for the scheduler.

The lookahead is ``lookahead_s`` (capped at ``max_lookahead_beats``), so a
control change is heard within that time plus the wait for the next note.
Modes: call-and-response answers each phrase for ``answer_bars`` bars from
the next bar (or beat); duet plays on and takes the performer's notes into the
models' state as they arrive; solo plays on from the seed phrase alone.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import mido

from rtgen.controls import check
from rtgen.encoding import Note
from rtgen.errors import RtgenError
from rtgen.live.clock import Clock
from rtgen.live.expression import Meter, Shaper
from rtgen.live.hooks import PlayerHooks, TokenEngine
from rtgen.live.listener import Listener, Phrase
from rtgen.live.roll import Roll
from rtgen.live.voice import Voice
from rtgen.modes import Mode

LOOP_ECHOES = 8  # echoes of rtgen's own notes before the performer is warned of a MIDI loop
STEP_PEAK_DECAY = 0.995  # the slowest recent engine step is held and decays by this factor a step
WARM_STEPS = 8  # engine steps timed before the first voice, so its first notes know how slow the engine is
READY_STEPS = 4  # a voice starts (or catches up to) at least this many of the slowest recent steps ahead of now


@dataclass(frozen=True)
class PlayerConfig:
    """Timing of the engine thread; beats are quarter notes."""

    lookahead_s: float = 0.05  # generated notes reach at most this far ahead of now, 0.005-1
    # ...or, for a slow engine, this many of its recent slowest steps (0: off), so a window model that
    # recomputes its window every token (10-30 ms on a busy CPU) still hands each note over before its time
    slow_steps_ahead: int = 16
    max_lookahead_beats: float = 1.0  # and never more than this many beats, > 0
    plan_ahead_beats: float = 2.0  # a call-and-response answer is generated this far ahead (the roll shows it), >= 0
    answer_bars: int | None = None  # answer length in bars; 0 = as long as the call; None = the preset's
    answer_start: Literal["bar", "beat"] = "bar"  # answers begin on the next bar line or beat
    beats_per_bar: int = 4  # 1-16
    out_channel: int = 0  # MIDI channel rtgen plays on, 0-15
    swing_beats: float = 1.0  # what the swing control swings: 1 = pairs of eighths, 0.5 = of sixteenths
    start_margin_s: float = 0.03  # an answer starts no sooner than this after the call ends, >= 0
    tick_s: float = 0.001  # the loop's sleep between ticks, 0.0002-0.02
    max_steps_per_tick: int = 32  # engine steps before commands and input are looked at again, >= 1
    max_commands_per_tick: int = 64  # commands applied a tick; the rest wait for the next, >= 1
    max_inputs_per_s: float = 4000.0  # input messages taken a second (far above a performer), >= 16
    max_steer_onsets_per_beat: float = 16.0  # duet: performer onsets fed to the models a beat (a beat's burst), >= 1
    late_note_s: float = 0.03  # a note-on generated this long after its time is skipped, not played late; > 0
    output_offset_ms: float | None = None  # added to every send time; negative sends early to make up for the
    # MIDI system's output latency (a DAW's "MIDI offset"). None: one period early on JACK (-1.33 for 64 frames
    # at 48 kHz, read from the server when the daemon opens its ports), 0 elsewhere

    def __post_init__(self) -> None:
        if not 0.005 <= self.lookahead_s <= 1.0:
            raise RtgenError(f"lookahead_s {self.lookahead_s} outside 0.005-1")
        if not 0 <= self.slow_steps_ahead <= 1000:
            raise RtgenError(f"slow_steps_ahead {self.slow_steps_ahead} outside 0-1000")
        if self.max_lookahead_beats <= 0:
            raise RtgenError(f"max_lookahead_beats {self.max_lookahead_beats} must be > 0")
        if not 0 <= self.plan_ahead_beats <= 16:
            raise RtgenError(f"plan_ahead_beats {self.plan_ahead_beats} outside 0-16")
        if self.answer_bars is not None and not 0 <= self.answer_bars <= 64:
            raise RtgenError(f"answer_bars {self.answer_bars} outside 0-64")
        if not 1 <= self.beats_per_bar <= 16:
            raise RtgenError(f"beats_per_bar {self.beats_per_bar} outside 1-16")
        if not 0 <= self.out_channel <= 15:
            raise RtgenError(f"out_channel {self.out_channel} outside 0-15")
        if self.start_margin_s < 0 or not 0.0002 <= self.tick_s <= 0.02 or self.max_steps_per_tick < 1:
            raise RtgenError("start_margin_s >= 0, tick_s 0.0002-0.02 and max_steps_per_tick >= 1 are required")
        for name, least in (("max_commands_per_tick", 1), ("max_inputs_per_s", 16), ("max_steer_onsets_per_beat", 1)):
            if getattr(self, name) < least:
                raise RtgenError(f"{name} {getattr(self, name)} must be >= {least}")
        if self.late_note_s <= 0:
            raise RtgenError(f"late_note_s {self.late_note_s} must be > 0")
        if self.output_offset_ms is not None and not -50 <= self.output_offset_ms <= 50:
            raise RtgenError(f"output_offset_ms {self.output_offset_ms} outside -50-50")
        self.meter()  # swing_beats is checked where it is used

    def meter(self) -> Meter:
        """The grid expression reads (rtgen.live.expression)."""
        return Meter(beats_per_bar=self.beats_per_bar, swing_beats=self.swing_beats)


class Allowance:
    """A token bucket: ``rate`` a unit of time (seconds or beats), at most ``burst`` saved up, full at first.

    The one rate limit of the daemon: inputs and steering onsets here, OSC packets in ``rtgen.daemon.osc``.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.left = burst
        self._at: float | None = None

    def refill(self, at: float) -> None:
        if self._at is not None:
            self.left = min(self.burst, self.left + max(0.0, at - self._at) * self.rate)
        self._at = at

    def take_one(self) -> bool:
        if self.left < 1.0:
            return False
        self.left -= 1.0
        return True

    def take_all(self, at: float) -> int:
        """Refill to ``at`` and take every whole unit left."""
        self.refill(at)
        taken = int(self.left)
        self.left -= taken
        return taken


class Player:
    """Owns engine, listener and voice; ``run`` is the engine thread's body, ``tick`` one pass of it.

    ``scheduler`` needs ``schedule(t, message)`` and ``cancel_after(t)``.
    ``hooks(player)`` makes the player's ways out (``PlayerHooks``: commands,
    input, routing, the take, the log) once the player exists; None leaves
    them idle. ``hooks.inputs(n)`` returns new ``(t, message)`` pairs;
    ``hooks.route(t, message)`` handles the ones that are not notes (clock,
    CC, program change) and returns False for those the listener should take.
    """

    def __init__(
        self,
        engine: TokenEngine,
        clock: Clock,
        scheduler,
        listener: Listener,
        config: PlayerConfig,
        mode: Mode,
        hooks: Callable[[Player], PlayerHooks] | None = None,
        sent: deque[tuple[float, mido.Message]] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.scheduler = scheduler
        self.listener = listener
        self.config = config
        self.mode: Mode = mode
        self.playing = True
        self.seed: tuple[Note, ...] = ()
        self.voice: Voice | None = None
        self.roll = Roll()
        self.expression = Shaper(config.meter())
        self.commands: queue.SimpleQueue[object] = queue.SimpleQueue()  # rtgen.daemon.commands values
        # (t, message) the output thread stamps right before each send (the daemon's TapPort fills it)
        self.sent: deque[tuple[float, mido.Message]] = deque(maxlen=65536) if sent is None else sent
        self.step_ms: deque[float] = deque(maxlen=512)
        self.step_peak_s = 0.0  # the slowest recent engine step, decaying (STEP_PEAK_DECAY a step)
        self.notes_out = 0
        self.answers = 0
        self.catch_ups = 0  # times the voice fell behind the clock and was moved on
        self.unsteered = 0  # duet: performer notes heard but not fed to the models (over the tick's budget)
        self.loop_warned = False
        self._inputs = Allowance(config.max_inputs_per_s, burst=config.max_inputs_per_s / 16)  # per second
        self._steer_allowance = Allowance(
            config.max_steer_onsets_per_beat, burst=config.max_steer_onsets_per_beat
        )  # a beat
        self.skipped_late = 0  # note-ons generated too late to play (their note-offs are dropped as strays)
        self.phrase_latency_ms: deque[float] = deque(maxlen=64)  # call detected -> answer scheduled
        self.answer_starts: deque[tuple[float, float]] = deque(maxlen=64)  # (call detected at s, answer beat)
        self.error: BaseException | None = None
        self.hooks = PlayerHooks() if hooks is None else hooks(self)  # last: the hooks may submit to this player

    # ---- commands (called from any thread; they only enqueue) ----

    def submit(self, command: object) -> None:
        self.commands.put(command)

    # ---- the thread ----

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; an exception is kept in ``error`` and sets ``stop``. A continuous voice
        planned at open starts from the beat after this thread starts (opening the ports took time)."""
        if self.voice is not None and self.voice.end_beat is None:
            self._place_voice(self.clock.now())
        try:
            while not stop.is_set():
                self.tick(self.clock.now())
                time.sleep(self.config.tick_s)
        except Exception as error:  # any failure: the daemon sends the note-offs and reports it in one line
            self.error = error
            stop.set()

    def tick(self, now: float) -> None:
        for _ in range(self.config.max_commands_per_tick):
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self.hooks.apply(command)
        self.hooks.glide(now)
        self.drain_sent()
        self._steer_allowance.refill(self.clock.beat_at(now))
        for t, message in self.hooks.inputs(self._inputs.take_all(now)):
            if not self.hooks.route(t, message):
                self.hear(t, message)
        self._warn_of_loop()
        self._take_heard(self.listener.expire(now))
        phrase = self.listener.poll(now)
        if phrase is not None:
            self.hooks.on_phrase_heard(phrase)
            self.on_phrase(phrase, now)
        self.generate(now)

    def hear(self, t: float, message: mido.Message) -> None:
        """A note message from the performer (CC64 included)."""
        self.hooks.on_heard(t, message)
        self._take_heard(self.listener.feed(t, message))

    def _take_heard(self, heard_notes: list) -> None:
        """The performer's note starts and ends: onto the roll, and in duet into the models (within budget)."""
        for heard in heard_notes:
            self.roll.performer(heard)
            if self.mode == "duet" and heard.on:
                self.expression.hear(heard.velocity)
            voice = self.voice
            if self.mode != "duet" or voice is None or not heard.on:
                continue
            if not self._steer_allowance.take_one():
                self.unsteered += 1
                continue
            voice.steer(heard, self.engine)

    def _warn_of_loop(self) -> None:
        echoes = self.listener.counts.echoes
        if echoes >= LOOP_ECHOES and not self.loop_warned:
            self.loop_warned = True
            self.hooks.log(f"warning: your output is looped to your input ({echoes} of rtgen's own notes came back)")

    def drain_sent(self) -> None:
        while self.sent:
            t, message = self.sent.popleft()
            self.listener.remember_sent(t, message)
            self.hooks.on_sent(t, message)
            if message.type in ("note_on", "note_off"):
                if message.type == "note_on" and message.velocity > 0:
                    self.notes_out += 1
                self.roll.rtgen(self.clock.beat_at(t), message)

    # ---- modes ----

    def set_mode(self, mode: Mode, now: float) -> None:
        check("mode", mode)
        self.silence(now)
        self.mode = mode
        self.listener.reset()
        if self.playing and mode != "call-and-response":
            self.begin_continuous(now)
        self.hooks.log(f"mode: {mode}")

    def start(self, now: float) -> None:
        if self.playing:
            return
        self.playing = True
        if self.mode != "call-and-response":
            self.begin_continuous(now)
        self.hooks.log("playing")

    def stop(self, now: float) -> None:
        self.playing = False
        self.silence(now)
        self.listener.reset()
        self.hooks.log("stopped")

    def silence(self, now: float) -> None:
        """End the voice: nothing scheduled after ``now`` sounds, sounding notes get their note-offs."""
        self.voice = None
        self.scheduler.cancel_after(now)
        self.roll.unplan_after(self.clock.beat_at(now))

    def warm_up(self) -> None:
        """Time ``WARM_STEPS`` engine steps before anything plays (then reset the stream): a slow engine (a window
        model, a busy CPU) would otherwise learn its step time from its first notes, which are then late."""
        self.engine.reset()
        self.engine.step()  # the first step pays one-off costs (allocation, lazy set-up): not timed
        for _ in range(WARM_STEPS):
            self._timed_step()
        self.step_ms.clear()  # the status reports steps taken while playing
        self.engine.reset()

    def begin_continuous(self, now: float) -> None:
        """Solo and duet: restart the models from the seed phrase and play from the next beat (after ``now``, and
        after the priming: the time it took never makes the start late)."""
        self.engine.reset()
        if self.seed:
            self.engine.prime(self.seed)
        self._place_voice(max(now, self.clock.now()))

    def _place_voice(self, now: float) -> None:
        start = self._next_boundary(now, 1)
        self.voice = self._voice(start, None)
        self.expression.begin(start, solo=self.mode == "solo")

    def on_phrase(self, phrase: Phrase, now: float) -> None:
        """Call-and-response: prime with the call, answer from the next bar (or beat)."""
        if self.mode != "call-and-response" or not self.playing or not phrase.notes:
            return
        detected = time.perf_counter()
        self.silence(now)
        self.engine.prime(phrase.notes)
        # The answer's first bar (or beat) is chosen after priming, so the time priming took never makes it late.
        unit = self.config.beats_per_bar if self.config.answer_start == "bar" else 1
        start = self._next_boundary(self.clock.now(), unit)
        gap_steps = round((start - phrase.end_beat) * self.engine.encoding.steps_per_beat)
        if gap_steps > 0:
            self.engine.feed(self.engine.encoding.shift_tokens(gap_steps))
        bars = self.config.answer_bars or max(1, math.ceil(phrase.length_beats / self.config.beats_per_bar))
        self.voice = self._voice(start, start + bars * self.config.beats_per_bar)
        self.expression.hear_call([note.velocity for note in phrase.notes])
        self.expression.begin(start, start + bars * self.config.beats_per_bar)
        self.answers += 1
        self.generate(self.clock.now())
        self.phrase_latency_ms.append((time.perf_counter() - detected) * 1000)
        self.answer_starts.append((now, start))
        self.hooks.log(f"call of {len(phrase.notes)} notes; answering {bars} bars from beat {start:g}")

    def _voice(self, start_beat: float, end_beat: float | None) -> Voice:
        # A VAE's variation sits on the call's bar grid (rtgen.engine.variation): its leading rest is kept.
        return Voice(
            self.engine.encoding,
            start_beat,
            end_beat,
            channel=self.config.out_channel,
            compress_beats=0.0 if self.engine.keeps_bar_phase else float(self.config.beats_per_bar),
        )

    def _next_boundary(self, now: float, unit_beats: int) -> float:
        margin_s = max(self.config.start_margin_s, READY_STEPS * self.step_peak_s)
        earliest = self.clock.beat_at(now) + margin_s * self.clock.tempo_bpm / 60.0
        return float(math.ceil(earliest / unit_beats - 1e-9) * unit_beats)

    # ---- generation ----

    def lookahead_beats(self) -> float:
        """How far ahead of now the voice is generated: the lookahead, or further for a committed answer.

        An answer in call-and-response is planned ``plan_ahead_beats`` ahead so
        the performer sees it coming on the roll; a control change then reaches
        it that much later. Solo and duet keep the short lookahead, stretched to
        ``slow_steps_ahead`` of the engine's recent slowest steps for a slow engine.
        """
        ahead_s = max(self.config.lookahead_s, self.config.slow_steps_ahead * self.step_peak_s)
        lookahead = min(self.config.max_lookahead_beats, ahead_s * self.clock.tempo_bpm / 60.0)
        answering = self.voice is not None and self.voice.end_beat is not None
        return max(lookahead, self.config.plan_ahead_beats) if answering else lookahead

    def generate(self, now: float) -> None:
        """Step the engine until the voice is ``lookahead_beats`` ahead of ``now`` (or ends)."""
        voice = self.voice
        if voice is None or not self.playing or not self.clock.running:
            return
        current, lookahead = self.clock.beat_at(now), self.lookahead_beats()
        # a voice behind (or about to be) moves on to where its next note can still be made in time, within the
        # lookahead so generation goes on
        ready = min(READY_STEPS * self.step_peak_s * self.clock.tempo_bpm / 60.0, lookahead / 2)
        if voice.catch_up(current + ready):
            self.catch_ups += 1
        horizon = current + lookahead
        max_note_beats = self.engine.controls.max_note_beats
        for _ in range(self.config.max_steps_per_tick):
            # Leading silence costs no time (it is skipped), so it is generated as early as possible:
            # the first note is then ready when its beat comes, however many rests the model chose first.
            if voice.position > horizon and not voice.before_first_note:
                break
            token = self._timed_step()
            events = voice.advance(token, max_note_beats)
            if events:  # the form's section end, on the clock: the voice's position is the engine's stream's
                left = self.engine.beats_to_section_end
                self.expression.section_end = None if left is None else voice.position + left
                self._schedule(events)
            if voice.finished:
                self.voice = None
                break

    def _timed_step(self) -> int:
        before = time.perf_counter()
        token = self.engine.step()
        took_s = time.perf_counter() - before
        self.step_ms.append(took_s * 1000)
        self.step_peak_s = max(took_s, self.step_peak_s * STEP_PEAK_DECAY)
        return token

    def _schedule(self, events: Sequence[tuple[float, mido.Message]]) -> None:
        """Hand events to the output thread; a note-on already ``late_note_s`` overdue is dropped instead.

        A burst of tokens on one grid step, or a stalled machine, can make the
        engine produce a note after its time; a note far off the beat is worse
        than a missing one, and a late note-off still goes out (the scheduler
        drops the note-off of a note it never started).
        """
        clock, offset_s = self.clock, (self.config.output_offset_ms or 0.0) / 1e3
        controls = self.engine.controls
        amount, swing = controls.expression, controls.swing
        for grid_beat, message in events:
            if message.type == "note_on":
                beat, message.velocity = self.expression.note_on(
                    grid_beat, message.note, message.velocity, amount, swing
                )
            else:
                beat = self.expression.note_off(grid_beat, message.note, amount, swing)
            t = clock.time_at(beat) + offset_s
            if message.type == "note_on" and t < clock.now() - self.config.late_note_s:
                self.skipped_late += 1
                continue
            self.scheduler.schedule(t, message)
            self.roll.plan(beat, message)

    def prime_seed(self, notes: Sequence[Note]) -> None:
        self.seed = tuple(notes)
