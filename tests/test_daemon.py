"""The daemon on a fake clock with fake ports and a fake engine: modes, lookahead, commands, CC, shutdown."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import threading
import time

import mido
import pytest

from rtgen.daemon.commands import Learn, LoadPreset, SavePreset, SetControls, Transport
from rtgen.daemon.config import DaemonConfig
from rtgen.daemon.presets import list_presets
from rtgen.daemon.process import Daemon
from rtgen.daemon.recording import read_take
from rtgen.daemon.status import to_json
from rtgen.daemon.supervisor import supervise
from rtgen.encoding import DEFAULT_VELOCITY, EventEncoding
from rtgen.engine.controls import Controls, parse_weights
from rtgen.errors import RtgenError
from rtgen.live.clock import FakeClock
from rtgen.live.hooks import PlayerHooks
from rtgen.live.listener import Listener, ListenerConfig
from rtgen.live.player import Player, PlayerConfig
from rtgen.live.scheduler import OutputScheduler
from rtgen.midi.jack import wait_until
from rtgen.midi.ports import FakeInputPort, FakeOutputPort

GENRES = ("folk", "fiddle", "chorale", "renaissance")


class FakeEngine:
    """Plays a fixed pattern: eighth notes up a C major arpeggio, each a sixteenth long."""

    keeps_bar_phase = False
    beats_to_section_end = None  # no form: expression counts 8-bar sections

    def __init__(self, genres, device, controls: Controls, seed) -> None:
        self.encoding = EventEncoding()
        self.genres = tuple(genres)
        self.device = "cpu"
        self._controls = controls
        self.primed: list[list] = []
        self.fed: list[int] = []
        self.steps = 0
        self.controls_at_step: list[Controls] = []
        self.reset()

    @property
    def controls(self) -> Controls:
        return self._controls

    def set_controls(self, **changes) -> Controls:
        self._controls = self._controls.replace(**changes)
        return self._controls

    def reset(self) -> None:
        enc = self.encoding
        pattern = []
        for pitch in (60, 64, 67, 72):
            pattern += [enc.note_on_id(pitch), enc.shift_base + 2, enc.off_base + pitch, enc.shift_base + 2]
        self._pattern = itertools.cycle(pattern)

    def prime(self, notes) -> None:
        self.primed.append(list(notes))

    def feed(self, tokens, *, performer: bool = False) -> None:
        self.fed.extend(tokens)

    def step(self) -> int:
        self.steps += 1
        self.controls_at_step.append(self._controls)
        return next(self._pattern)


@pytest.fixture
def make_daemon(tmp_path, monkeypatch):
    monkeypatch.setenv("RTGEN_CONFIG_DIR", str(tmp_path / "config"))
    made = []

    def make(mode="call-and-response", engine_factory=FakeEngine, **settings) -> Daemon:
        clock = FakeClock(tempo_bpm=120.0, start_s=100.0)
        config = DaemonConfig(
            genres=dict.fromkeys(GENRES, 1.0),
            mode=mode,
            tempo_bpm=120.0,
            record_dir=str(tmp_path / "takes"),
            **{"player": PlayerConfig(answer_bars=1, lookahead_s=0.05, slow_steps_ahead=0)} | settings,
        )
        daemon = Daemon(
            config,
            engine_factory=engine_factory,
            in_port=FakeInputPort(now=clock),
            out_port=FakeOutputPort(now=clock),
            clock=clock,
            scheduler_factory=lambda port, clock: OutputScheduler(port, now=clock.now),
        )
        made.append(daemon.open())
        daemon.disk.start()
        return daemon

    yield make
    for daemon in made:
        daemon.shutdown()


def run_for(daemon: Daemon, seconds: float, step_s: float = 0.005) -> None:
    """Tick the engine thread's loop and the output thread's pump on the fake clock."""
    clock = daemon.clock
    for _ in range(round(seconds / step_s)):
        clock.advance(step_s)
        daemon.player.tick(clock.now())
        daemon.scheduler.pump()


def run_until(daemon: Daemon, predicate, timeout_s: float = 5.0) -> bool:
    """Tick until ``predicate()`` holds: for results of the disk worker, which runs on the real clock."""
    return wait_until(lambda: (run_for(daemon, 0.005), predicate())[1], timeout_s=timeout_s, poll_s=0.001)


def errors(daemon: Daemon) -> list[str]:
    return [line for _, kind, line in daemon.events_after(-1) if kind == "error"]


def logs(daemon: Daemon) -> list[str]:
    return [line for _, kind, line in daemon.events_after(-1) if kind == "log"]


def run_until_beat(daemon: Daemon, beat: float) -> None:
    clock = daemon.clock
    run_for(daemon, max(0.0, clock.time_at(beat) - clock.now()))


def note_ons(daemon: Daemon) -> list[tuple[float, mido.Message]]:
    return [(t, m) for t, m in daemon.out_port.sent if m.type == "note_on" and m.velocity > 0]


def assert_all_closed(daemon: Daemon) -> None:
    open_notes: dict[tuple[int, int], int] = {}
    for _, message in daemon.out_port.sent:
        key = (getattr(message, "channel", 0), getattr(message, "note", 0))
        if message.type == "note_on" and message.velocity > 0:
            open_notes[key] = open_notes.get(key, 0) + 1
        elif message.type in ("note_on", "note_off"):
            open_notes[key] = max(0, open_notes.get(key, 0) - 1)
    assert not any(open_notes.values()), open_notes


def play_phrase(daemon: Daemon, start_beat: float, pitches: list[int]) -> None:
    """Quarter notes from ``start_beat``, pushed into the fake input with their stamps."""
    clock = daemon.clock
    for i, pitch in enumerate(pitches):
        t_on = clock.time_at(start_beat + i)
        daemon.in_port.push(mido.Message("note_on", note=pitch, velocity=90), t_on)
        daemon.in_port.push(mido.Message("note_off", note=pitch), t_on + 0.45)


def test_call_and_response_answers_from_the_next_bar(make_daemon):
    daemon = make_daemon()
    run_for(daemon, 0.1)
    assert note_ons(daemon) == []  # listening, silent
    bar = 4 * (int(daemon.clock.beat_at(daemon.clock.now())) // 4 + 1)
    play_phrase(daemon, bar + 0.02, [62, 64, 65, 67, 69, 67, 65, 64])  # two bars, a little late
    run_until_beat(daemon, bar + 8 + 1.2)  # the phrase, its one-beat gap, a little more
    engine = daemon.engine
    assert len(engine.primed) == 1
    assert [n.pitch for n in engine.primed[0]] == [62, 64, 65, 67, 69, 67, 65, 64]
    assert engine.primed[0][0].start == 0  # quantised onto the grid from its bar line
    assert note_ons(daemon) == []  # not before the next bar
    run_until_beat(daemon, bar + 8 + 4 + 6)  # the answer bar and then some
    ons = note_ons(daemon)
    answer_bar = bar + 8 + 4  # the call took bars 1-2; silence was detected in bar 3; answer in bar 4
    first_beat = daemon.clock.beat_at(ons[0][0])
    assert first_beat == pytest.approx(answer_bar, abs=0.01)
    assert all(daemon.clock.beat_at(t) < answer_bar + 4 for t, _ in ons)  # one bar (answer_bars = 1)
    assert_all_closed(daemon)
    snapshot = daemon.snapshot()
    assert snapshot.notes_in == 8 and snapshot.notes_out == len(ons)
    assert {n.source for n in snapshot.roll} == {"performer", "rtgen"}  # the answer is over: nothing planned


def test_an_answer_is_planned_ahead_and_the_status_shows_it(make_daemon):
    daemon = make_daemon()
    bar = 4 * (int(daemon.clock.beat_at(daemon.clock.now())) // 4 + 1)
    play_phrase(daemon, bar, [62, 64, 65, 67, 69, 67, 65, 64])
    run_until_beat(daemon, bar + 12.1)  # the answer has just begun
    now = daemon.clock.beat_at(daemon.clock.now())
    snap = daemon.snapshot()
    planned = [n for n in snap.roll if n.source == "planned"]
    assert planned and all(now < n.start_beat <= now + 2.05 for n in planned), (now, planned)
    assert any(row[3] == "a" for row in to_json(snap)["roll"])  # the OSC status carries them
    run_until_beat(daemon, bar + 17)
    assert not [n for n in daemon.snapshot().roll if n.source == "planned"]  # all sounded


def test_solo_plays_continuously_within_the_lookahead(make_daemon):
    daemon = make_daemon(mode="solo")
    scheduled: list[tuple[float, float]] = []
    original = daemon.scheduler.schedule

    def spy(t, message):
        scheduled.append((daemon.clock.now(), t))
        original(t, message)

    daemon.scheduler.schedule = spy
    run_for(daemon, 2.0)
    ons = note_ons(daemon)
    assert len(ons) == 6  # eighth notes at 120 BPM from beat 1 (0.5 s) to 2 s
    lookahead_s = daemon.player.lookahead_beats() * 60 / daemon.clock.tempo_bpm
    tick_s, step_s = 0.005, 60 / 120 / 12
    # the first note is prepared as soon as the voice exists (leading silence costs no time); the rest
    # are generated no further ahead than the lookahead (plus a tick and the step that crosses it)
    assert max(t - now for now, t in scheduled[1:]) <= lookahead_s + tick_s + step_s + 1e-9
    assert daemon.engine.primed  # primed with the preset's seed phrase
    assert_all_closed_after_shutdown(daemon)


def test_a_slow_engine_is_planned_further_ahead(make_daemon):
    """The lookahead stretches to ``slow_steps_ahead`` of the engine's slowest recent steps, within the cap."""
    daemon = make_daemon(mode="solo")
    player = daemon.player
    assert player.lookahead_beats() == pytest.approx(0.05 * 120 / 60)  # stretch off in this fixture
    player.config = dataclasses.replace(player.config, slow_steps_ahead=16)
    player.step_peak_s = 0.001  # 16 ms: under the 50 ms lookahead
    assert player.lookahead_beats() == pytest.approx(0.1)
    player.step_peak_s = 0.02  # a window model on a busy CPU: 320 ms ahead, 0.64 beats at 120 BPM
    assert player.lookahead_beats() == pytest.approx(0.64)
    player.step_peak_s = 1.0
    assert player.lookahead_beats() == player.config.max_lookahead_beats
    with pytest.raises(RtgenError):
        PlayerConfig(slow_steps_ahead=-1)
    daemon.shutdown()


class SlowEngine(FakeEngine):
    """An engine whose every step takes 20 ms, like a window model on a busy CPU."""

    def step(self) -> int:
        time.sleep(0.02)
        return super().step()


def test_a_slow_engine_is_timed_before_it_plays_and_its_first_note_is_planned_in_time(make_daemon):
    """Steps are timed before the first voice, so a slow engine's first note starts far enough ahead of now."""
    daemon = make_daemon(mode="solo", engine_factory=SlowEngine, player=PlayerConfig(lookahead_s=0.05))
    player = daemon.player
    assert player.step_peak_s >= 0.02
    assert player.lookahead_beats() >= 16 * 0.02 * 120 / 60 - 1e-9
    now = daemon.clock.now()
    assert daemon.clock.time_at(player.voice.start_beat) - now >= 4 * 0.02
    daemon.shutdown()


def assert_all_closed_after_shutdown(daemon: Daemon) -> None:
    daemon.shutdown()
    assert_all_closed(daemon)
    tail = [m for _, m in daemon.out_port.sent[-3:]]
    assert [m.control for m in tail] == [64, 123, 120]


def test_mode_change_silences_what_was_pending(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 1.0)
    count = len(note_ons(daemon))
    daemon.submit(SetControls.one("mode", "call-and-response"))
    run_for(daemon, 1.0)
    assert len(note_ons(daemon)) <= count + 1  # at most the note already inside the lookahead
    assert_all_closed(daemon)
    assert daemon.snapshot().mode == "call-and-response"
    daemon.submit(SetControls.one("mode", "duet"))
    run_for(daemon, 1.0)
    assert len(note_ons(daemon)) > count + 1


def test_duet_feeds_the_performers_notes_into_the_models(make_daemon):
    daemon = make_daemon(mode="duet")
    run_for(daemon, 0.6)
    daemon.in_port.push(mido.Message("note_on", note=70, velocity=80), daemon.clock.now())
    run_for(daemon, 0.3)
    daemon.in_port.push(mido.Message("note_off", note=70), daemon.clock.now())
    run_for(daemon, 0.1)
    enc = daemon.engine.encoding
    assert enc.note_on_id(70) in daemon.engine.fed and enc.off_base + 70 in daemon.engine.fed


def test_stop_and_start_and_panic(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 0.8)
    daemon.submit(Transport("stop"))
    run_for(daemon, 0.05)
    count = len(note_ons(daemon))
    run_for(daemon, 1.0)
    assert len(note_ons(daemon)) == count and not daemon.snapshot().playing
    assert_all_closed(daemon)
    daemon.submit(Transport("play"))
    run_for(daemon, 1.0)
    assert len(note_ons(daemon)) > count
    daemon.submit(Transport("panic"))
    run_for(daemon, 0.01)
    assert daemon.out_port.sent[-1][1].control == 120
    assert daemon.scheduler.sounding() == frozenset()


def test_control_changes_reach_the_next_steps(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 0.5)
    daemon.submit(SetControls.one("temperature", 0.5))
    run_for(daemon, 0.005)
    steps_before = daemon.engine.steps
    run_for(daemon, 0.5)
    assert all(c.temperature == 0.5 for c in daemon.engine.controls_at_step[steps_before:])
    daemon.submit(SetControls.one("temperature", -1.0))
    daemon.submit(SetControls.one("mode", "karaoke"))
    run_for(daemon, 0.005)
    assert any("temperature" in line for line in errors(daemon)) and any("mode" in line for line in errors(daemon))
    assert daemon.engine.controls.temperature == 0.5 and daemon.player.mode == "solo"  # refused, reported, playing


def test_cc_knobs_learn_and_program_change(make_daemon, tmp_path):
    daemon = make_daemon(mode="solo")
    now = daemon.clock.now()
    daemon.in_port.push(mido.Message("control_change", control=1, value=127), now)
    daemon.in_port.push(mido.Message("control_change", control=22, value=0), now)  # fiddle weight -> 0
    run_for(daemon, 0.01)
    controls = daemon.engine.controls
    assert controls.temperature == pytest.approx(2.0) and controls.weights["fiddle"] == 0.0
    daemon.submit(Learn("top_k"))
    run_for(daemon, 0.01)
    assert daemon.snapshot().learning == "top_k"
    daemon.in_port.push(mido.Message("control_change", control=30, value=127, channel=2), daemon.clock.now())
    run_for(daemon, 0.01)
    assert daemon.engine.controls.top_k == 64 and daemon.snapshot().learning is None
    saved = tmp_path / "config" / "cc_map.toml"
    assert wait_until(lambda: saved.is_file() and 'control = "top_k"' in saved.read_text())  # by the disk worker
    program = list_presets().index("fiddle-reel")
    daemon.in_port.push(mido.Message("program_change", program=program), daemon.clock.now())
    assert run_until(daemon, lambda: daemon.snapshot().preset == "fiddle-reel")
    snapshot = daemon.snapshot()
    assert snapshot.preset == "fiddle-reel" and snapshot.tempo_bpm == 168 and snapshot.mode == "solo"
    assert snapshot.controls.weights == {"fiddle": 8.0, "folk": 1.0}


def test_tempo_change_keeps_the_phase(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 0.5)
    beat = daemon.clock.beat_at(daemon.clock.now())
    daemon.submit(SetControls.one("tempo_bpm", 90.0))
    run_for(daemon, 0.005)  # 5 ms at 120 BPM, then the command runs
    assert daemon.clock.tempo_bpm == 90.0
    run_for(daemon, 0.005)  # 5 ms at 90 BPM
    assert daemon.clock.beat_at(daemon.clock.now()) == pytest.approx(beat + 0.01 + 0.0075, abs=1e-9)
    daemon.submit(SetControls.one("tempo_bpm", 1000.0))
    run_for(daemon, 0.005)
    assert daemon.clock.tempo_bpm == 400.0  # a knob or OSC client past the range gets its end


def test_take_holds_both_tracks_with_every_note_closed(make_daemon):
    daemon = make_daemon(mode="duet")
    run_for(daemon, 0.5)
    daemon.in_port.push(mido.Message("note_on", note=50, velocity=70), daemon.clock.now())
    run_for(daemon, 0.5)
    path = daemon.recorder.path
    daemon.shutdown()
    tracks = read_take(path)
    assert [m.note for _, m in tracks["performer"] if m.type == "note_on"] == [50]
    for name in ("performer", "rtgen"):
        ons = sum(1 for _, m in tracks[name] if m.type == "note_on" and m.velocity)
        offs = sum(1 for _, m in tracks[name] if m.type == "note_off" or (m.type == "note_on" and not m.velocity))
        assert ons == offs and ons > 0


def test_save_and_load_a_preset(make_daemon, tmp_path, monkeypatch):
    daemon = make_daemon(mode="solo")
    monkeypatch.setenv("RTGEN_PRESETS", str(tmp_path / "presets"))
    daemon.submit(SetControls.one("temperature", 0.7))
    daemon.submit(SavePreset("mine"))
    run_for(daemon, 0.01)
    assert wait_until(lambda: list_presets() == ["mine"])
    daemon.submit(SetControls.one("temperature", 1.3))
    daemon.submit(LoadPreset("mine"))
    assert run_until(daemon, lambda: daemon.engine.controls.temperature == 0.7)
    daemon.submit(LoadPreset("nothing-here"))
    assert run_until(daemon, lambda: any("no such preset" in line for line in errors(daemon)))


def test_a_seed_phrase_from_a_take_restarts_solo_from_its_last_bars(make_daemon, tmp_path):
    from rtgen.daemon.commands import LoadSeed
    from rtgen.daemon.recording import Recorder

    recorder = Recorder(tmp_path / "take.mid", lambda t: t, 120.0)  # stamps in beats
    for bar in range(20):  # 20 bars of one note each, then the last bar's pitch rises
        recorder.add("performer", 4.0 * bar, mido.Message("note_on", note=40 + bar, velocity=90))
        recorder.add("performer", 4.0 * bar + 2, mido.Message("note_off", note=40 + bar))
    recorder.close()
    daemon = make_daemon(mode="solo")
    daemon.submit(LoadSeed(str(tmp_path / "take.mid")))
    assert run_until(daemon, lambda: any("seed phrase: 8 notes" in line for line in logs(daemon)))
    assert [n.pitch for n in daemon.player.seed] == list(range(52, 60))  # the last 32 beats, from 0
    assert daemon.player.seed[0].start == 0 and daemon.player.voice is not None
    daemon.submit(LoadSeed(str(tmp_path / "missing.mid")))
    assert run_until(daemon, lambda: any("no such MIDI file" in line for line in errors(daemon)))


def test_a_steering_knob_glides_over_a_beat_and_a_preset_jumps(make_daemon):
    daemon = make_daemon(mode="solo")
    daemon.submit(SetControls.one("register", 60.0))  # switched on: at once
    run_for(daemon, 0.01)
    assert daemon.engine.controls.register == 60.0
    start = daemon.clock.beat_at(daemon.clock.now())
    daemon.submit(SetControls((("register", 72.0), ("temperature", 0.5))))
    run_until_beat(daemon, start + 0.5)
    assert 62.0 <= daemon.engine.controls.register <= 70.0 and daemon.engine.controls.temperature == 0.5
    run_until_beat(daemon, start + 1.2)
    assert daemon.engine.controls.register == 72.0


def test_a_player_calls_out_only_through_the_hooks_it_was_made_with():
    clock = FakeClock(tempo_bpm=120.0, start_s=100.0)
    made, lines, heard = [], [], []
    played = [(clock.now(), mido.Message("note_on", note=60, velocity=90))]

    def hooks(player: Player) -> PlayerHooks:
        made.append(player)
        return PlayerHooks(
            inputs=lambda limit: [played.pop() for _ in range(min(limit, len(played)))],
            on_heard=lambda t, message: heard.append(message.note),
            log=lines.append,
        )

    engine = FakeEngine(GENRES, "cpu", Controls(), None)
    listener = Listener(ListenerConfig(), engine.encoding.steps_per_beat, clock.beat_at)
    scheduler = OutputScheduler(FakeOutputPort(now=clock), now=clock.now)
    player = Player(engine, clock, scheduler, listener, PlayerConfig(), "solo", hooks=hooks)
    assert made == [player]
    player.tick(clock.now())
    player.set_mode("duet", clock.now())
    assert heard == [60] and lines == ["mode: duet"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        player.hooks.log = print  # fixed when the player was made


def test_genres_flag_parses():
    assert parse_weights("folk=5, fiddle=2.5,chorale") == {"folk": 5.0, "fiddle": 2.5, "chorale": 1.0}
    with pytest.raises(RtgenError, match="not a number"):
        parse_weights("folk=loud")


class YieldingCount:
    """A serial counter that lets other threads run between taking a number and using it."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def __iter__(self):
        return self

    def __next__(self) -> int:
        number = next(self._count)
        time.sleep(0.0002)  # the widest window a thread switch could open
        return number


def test_every_log_line_reaches_a_reader_once_and_in_order_under_concurrent_writers():
    daemon = Daemon(DaemonConfig())  # nothing opened: logging needs no ports
    daemon._serial = YieldingCount()
    writers, lines = 4, 40  # 160 lines: fewer than the daemon keeps, so a slow reader loses none
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        last = -1
        while True:
            finished = done.is_set()
            for serial, _, _ in daemon.events_after(last):
                seen.append(serial)
                last = serial
            if finished:
                return

    def write(k: int) -> None:
        for i in range(lines):
            (daemon.log if i % 2 else daemon.report)(f"writer {k} line {i}")

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert [serial for serial, _, _ in daemon.events] == list(range(writers * lines))
    assert seen == list(range(writers * lines))  # what the OSC status stream sends: none skipped, none twice


def test_an_error_in_the_engine_thread_stops_the_daemon_with_notes_closed(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 0.6)  # a note is sounding

    def broken() -> int:
        raise RuntimeError("model exploded")

    daemon.engine.step = broken
    daemon.clock.advance(0.5)  # the voice is due for its next token
    daemon.player.run(daemon._stop)
    assert supervise(daemon, status_interval_s=60) == 1
    assert "model exploded" in str(daemon.error)
    daemon.shutdown()
    assert_all_closed(daemon)
    assert [m.control for _, m in daemon.out_port.sent[-3:]] == [64, 123, 120]


def test_daemon_config_reads_nested_tables_strictly(tmp_path):
    from rtgen import config as config_module
    from rtgen.config import ConfigError

    path = tmp_path / "daemon.toml"
    path.write_text(
        'preset = "folk-answer"\nclock = "external"\n[listener]\nphrase_gap_beats = 1.5\nchannel = 3\n'
        '[player]\nanswer_start = "beat"\nanswer_bars = 0\n'
    )
    config = config_module.load(DaemonConfig, path)
    assert config.clock == "external" and config.listener.channel == 3
    assert config.player.answer_start == "beat" and config.player.answer_bars == 0
    path.write_text("[player]\nlookahead_ms = 50\n")
    with pytest.raises(ConfigError, match="lookahead_ms"):
        config_module.load(DaemonConfig, path)


def test_send_clock_runs_start_ticks_stop(tmp_path, monkeypatch):
    monkeypatch.setenv("RTGEN_CONFIG_DIR", str(tmp_path))
    config = DaemonConfig(genres=dict.fromkeys(GENRES, 1.0), tempo_bpm=240.0, send_clock=True, record=False)
    out = FakeOutputPort()
    daemon = Daemon(config, engine_factory=FakeEngine, in_port=FakeInputPort(), out_port=out).open()
    planned: list[float] = []
    schedule = daemon.scheduler.schedule

    def spy(t, message):
        if message.type == "clock":
            planned.append(t)
        schedule(t, message)

    daemon.scheduler.schedule = spy
    start = out.now()
    daemon.launch()
    assert wait_until(lambda: sum(1 for _, m in out.sent if m.type == "clock") >= 24, timeout_s=10)
    daemon.request_stop()
    daemon.shutdown()
    kinds = [m.type for _, m in out.sent if m.type in ("start", "clock", "stop")]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    # What matters does not depend on this machine's speed: ticks planned 24 a beat at the daemon's tempo,
    # each sent in order and never before its time (how late is the scheduler's figure, not this test's).
    assert planned[0] > start
    assert [b - a for a, b in itertools.pairwise(planned)] == pytest.approx([60 / 240 / 24] * (len(planned) - 1))
    sent = [t for t, m in out.sent if m.type == "clock"]
    assert len(sent) <= len(planned) and all(t >= due for t, due in zip(sent, planned, strict=False))


@pytest.mark.parametrize("case", ["lost", "late"])
def test_lost_midi_clock_ticks_are_filled_in_and_late_ones_left_alone(case):
    from types import SimpleNamespace

    from rtgen.daemon.routing import InputRouter
    from rtgen.live.clock import ExternalClock

    clock = ExternalClock(now=lambda: 0.0, initial_tempo_bpm=100.0)
    router = InputRouter(clock=clock, player=None, commands=None, counts=SimpleNamespace(ignored=0), log=print)
    clock.feed("start", 0.0)
    period = 60 / 100 / 24
    for k in range(60):
        t = k * period
        if k == 30 and case == "lost":
            continue  # dropped on the way
        if k == 30 and case == "late":
            t += 0.7 * period  # starved, then delivered
        router.route(t, mido.Message("clock"))
    assert clock.beat_at(59 * period) == pytest.approx(59 / 24, abs=0.1 / 24)
    assert router.repaired_ticks == (1 if case == "lost" else 0)


def test_output_offset_is_kept_when_set_and_zero_off_jack():
    from rtgen.daemon.wiring import output_offset_ms

    logged: list[str] = []
    assert output_offset_ms(-2.5, FakeOutputPort(), logged.append) == -2.5
    assert output_offset_ms(None, FakeOutputPort(), logged.append) == 0.0
    assert logged == []


@pytest.mark.jack
def test_output_offset_defaults_to_one_jack_period_early(jack_server):
    from rtgen.daemon.wiring import output_offset_ms
    from rtgen.midi.ports import open_output

    port, logged = open_output(), []
    try:
        offset = output_offset_ms(None, port, logged.append)
    finally:
        port.close()
    assert offset == pytest.approx(-1000.0 * jack_server.period_frames / jack_server.rate_hz)
    assert logged == ["output offset -1.333 ms: one JACK period (64 frames at 48000 Hz) early"]


def test_a_refused_control_change_leaves_the_tempo_and_mode_it_came_with(make_daemon):
    daemon = make_daemon(mode="solo")
    daemon.submit(SetControls((("tempo_bpm", 90.0), ("mode", "duet"), ("temperature", -1.0))))
    run_for(daemon, 0.005)
    assert any("temperature" in line for line in errors(daemon))
    assert daemon.clock.tempo_bpm == 120.0 and daemon.player.mode == "solo"


def test_recording_start_tells_the_takes_full_path_headless(tmp_path, monkeypatch, capsys):
    from rtgen.cli.run_cmd import _print_event

    monkeypatch.setenv("RTGEN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    config = DaemonConfig(genres=dict.fromkeys(GENRES, 1.0), mode="solo", tempo_bpm=120.0, record_dir="takes")
    daemon = Daemon(config, engine_factory=FakeEngine, in_port=FakeInputPort(), out_port=FakeOutputPort()).open()
    try:
        daemon.launch()
        daemon.request_stop()
        supervise(daemon, on_event=_print_event)  # what `rtgen run --headless` prints, up to the stop
    finally:
        daemon.shutdown()
    path = daemon.recorder.path
    assert path.is_absolute() and path.parent == tmp_path / "takes" and path.is_file()
    assert f"rtgen: recording the take to {path}\n" in capsys.readouterr().out


def test_a_port_change_is_printed_once_by_the_headless_daemon(monkeypatch, capsys):
    import logging

    from rtgen.cli.run_cmd import _print_event, quiet_port_warnings
    from rtgen.midi.watcher import PortWatcher

    logger = logging.getLogger("rtgen.midi.watcher")
    monkeypatch.setattr(logger, "handlers", [])  # restored after the test: the handler added below goes too
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # no logging configured, as in `rtgen run`, not pytest
    line = "MIDI output 'synth' is back; reconnected"
    port = FakeOutputPort()
    monkeypatch.setattr(port, "check", lambda: line)
    quiet_port_warnings()
    PortWatcher([port], on_event=lambda text: _print_event("log", text)).check_once()
    out, err = capsys.readouterr()
    assert out == f"rtgen: {line}\n" and err == ""


def test_the_daemon_limits_malloc_arenas_on_linux():
    import sys

    from rtgen.daemon.supervisor import limit_malloc_arenas

    assert limit_malloc_arenas() is sys.platform.startswith("linux")


def test_an_allowance_refills_at_its_rate_up_to_its_burst():
    from rtgen.live.player import Allowance

    allowance = Allowance(rate=100.0, burst=10.0)
    assert allowance.take_all(0.0) == 10 and allowance.take_all(0.05) == 5
    allowance.refill(10.0)
    assert allowance.left == 10.0 and all(allowance.take_one() for _ in range(10)) and not allowance.take_one()


def _programs(daemon: Daemon) -> list[tuple[int, int]]:
    return [(m.channel, m.program) for _, m in daemon.out_port.sent if m.type == "program_change"]


def test_with_a_synth_the_output_plays_the_heaviest_genres_program_and_follows_the_weights(make_daemon):
    from rtgen.daemon.synth import SynthConfig

    daemon = make_daemon(mode="solo", synth=SynthConfig(enabled=True, programs={"renaissance": 74}))
    run_for(daemon, 0.1)
    assert _programs(daemon) == [(0, 19)]  # equal weights: the tie goes to chorale, a church organ
    daemon.submit(SetControls.one("weights.renaissance", 5.0))
    run_for(daemon, 0.05)
    assert _programs(daemon) == [(0, 19), (0, 74)]  # the config's recorder for renaissance
    daemon.submit(SetControls.one("weights.renaissance", 6.0))
    run_for(daemon, 0.05)
    assert _programs(daemon) == [(0, 19), (0, 74)]  # the same heaviest genre: nothing more sent


def test_without_a_synth_no_program_change_is_sent(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 0.1)
    daemon.submit(SetControls.one("weights.renaissance", 5.0))
    run_for(daemon, 2.0)
    assert _programs(daemon) == [] and note_ons(daemon)  # playing, with whatever program the synth has


# ---- expression (rtgen.live.expression) through the player ----

DECODED_VELOCITY = EventEncoding().quantise_velocity(DEFAULT_VELOCITY)  # what every decoded note had: 79


def answer_to(daemon, velocity: int) -> list[int]:
    """Play a two-bar call of quarter notes at ``velocity``; the velocities of the one-bar answer."""
    clock = daemon.clock
    bar = 4 * (int(clock.beat_at(clock.now())) // 4 + 1)
    for i, pitch in enumerate([62, 64, 65, 67, 69, 67, 65, 64]):
        t_on = clock.time_at(bar + i)
        daemon.in_port.push(mido.Message("note_on", note=pitch, velocity=velocity), t_on)
        daemon.in_port.push(mido.Message("note_off", note=pitch), t_on + 0.45)
    run_until_beat(daemon, bar + 8 + 4 + 5)
    assert_all_closed(daemon)
    return [m.velocity for _, m in note_ons(daemon)]


def test_a_soft_call_gets_a_soft_answer_and_a_loud_call_a_loud_one(make_daemon):
    soft, loud = answer_to(make_daemon(), 40), answer_to(make_daemon(), 110)
    assert len(soft) == len(loud) == 8
    assert statistics.mean(loud) - statistics.mean(soft) >= 40


def test_at_the_default_solo_has_accents_and_spread(make_daemon):
    daemon = make_daemon(mode="solo")
    run_for(daemon, 16.0)  # eight bars at 120 BPM
    ons = [(daemon.clock.beat_at(t), m.velocity) for t, m in note_ons(daemon)]
    velocities = [v for _, v in ons]
    downbeats = [v for beat, v in ons if abs(beat - round(beat / 4) * 4) < 0.01]
    off_beats = [v for beat, v in ons if abs(beat - round(beat)) > 0.1]
    assert statistics.pstdev(velocities) >= 8
    assert statistics.mean(downbeats) > statistics.mean(off_beats)
    assert_all_closed(daemon)


def planned_note_ons(daemon: Daemon) -> list[tuple[float, int]]:
    """Watch what the player hands the scheduler: (planned beat, velocity) of each note-on, as it comes."""
    planned, schedule = [], daemon.scheduler.schedule

    def spy(t, message):
        if message.type == "note_on" and message.velocity:
            planned.append((daemon.clock.beat_at(t), message.velocity))
        schedule(t, message)

    daemon.scheduler.schedule = spy
    return planned


def test_expression_zero_plays_the_decoded_velocities_on_the_grid(make_daemon):
    daemon = make_daemon(mode="solo")
    planned = planned_note_ons(daemon)
    daemon.submit(SetControls.one("expression", 0.0))
    run_for(daemon, 8.0)
    assert len(planned) >= 30 and {v for _, v in planned} == {DECODED_VELOCITY}
    assert all(abs(beat * 2 - round(beat * 2)) < 1e-9 for beat, _ in planned)  # eighth notes on the grid


def test_swing_delays_the_off_beats_by_a_triplet(make_daemon):
    daemon = make_daemon(mode="solo")
    planned = planned_note_ons(daemon)
    daemon.submit(SetControls.one("swing", 0.5))
    run_for(daemon, 4.0)
    assert {round(beat % 1, 6) for beat, _ in planned} == {0.0, round(2 / 3, 6)}


class SectionedEngine(FakeEngine):
    """``FakeEngine`` with a form: one section that closes at stream beat ``CLOSE``, off the 8-bar grid."""

    CLOSE = 14.0

    def reset(self) -> None:
        super().reset()
        self.position = 0.0  # beats the stream has moved since the reset

    def step(self) -> int:
        token = super().step()
        enc = self.encoding
        if enc.shift_base <= token < enc.velocity_base:
            self.position += (token - enc.shift_base + 1) / enc.steps_per_beat
        return token

    @property
    def beats_to_section_end(self) -> float:
        return self.CLOSE - self.position if self.position < self.CLOSE else math.inf


@pytest.mark.parametrize(("engine_kind", "slowed"), [(SectionedEngine, (11.0, 15.0)), (FakeEngine, (28.0, 32.0))])
def test_solo_slows_into_the_section_ends_the_engine_reports_and_nowhere_else(engine_kind, slowed):
    """The form's close (voice from beat 1: clock beat 15) gets the last bar's ritardando; a formless engine, 8 bars."""
    clock = FakeClock(tempo_bpm=120.0, start_s=100.0)
    engine = engine_kind(GENRES, "cpu", Controls(), None)
    listener = Listener(ListenerConfig(), engine.encoding.steps_per_beat, clock.beat_at)
    scheduler = OutputScheduler(FakeOutputPort(now=clock), now=clock.now)
    player = Player(engine, clock, scheduler, listener, PlayerConfig(), "solo")
    planned, schedule = [], scheduler.schedule

    def spy(t, message):
        if message.type == "note_on":
            planned.append(clock.beat_at(t))
        schedule(t, message)

    scheduler.schedule = spy
    player.begin_continuous(clock.now())
    while clock.beat_at(clock.now()) < 36.0:
        clock.advance(0.005)
        player.tick(clock.now())
        scheduler.pump()
    assert player.voice is not None and player.voice.start_beat == 1.0
    late = {beat // 0.5 * 0.5 for beat in planned if abs(beat * 2 - round(beat * 2)) > 1e-9}  # grid beats played late
    low, high = slowed
    assert late == {low + 0.5 * i for i in range(1, 8)}, sorted(late)  # the bar before the close, its downbeat kept
    assert high in planned and len(planned) >= 60  # the next section starts on its bar line again


def test_in_duet_rtgen_follows_how_hard_the_performer_plays(make_daemon):
    means = []
    for velocity in (35, 115):
        daemon = make_daemon(mode="duet")
        run_for(daemon, 0.5)
        for _ in range(8):  # a note a beat
            daemon.in_port.push(mido.Message("note_on", note=60, velocity=velocity), daemon.clock.now())
            run_for(daemon, 0.25)
            daemon.in_port.push(mido.Message("note_off", note=60), daemon.clock.now())
            run_for(daemon, 0.25)
        heard_from = daemon.clock.now()
        run_for(daemon, 2.0)
        means.append(statistics.mean(m.velocity for t, m in note_ons(daemon) if t >= heard_from))
    assert means[1] - means[0] >= 40, means
