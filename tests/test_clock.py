"""Clocks on a fake time base: tempo changes keep phase, the MIDI clock follower locks through jitter."""

from __future__ import annotations

import random

import mido
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jack_server import wait_until

from rtgen.errors import RtgenError
from rtgen.live.clock import ClockSender, ExternalClock, FakeClock, InternalClock
from rtgen.live.scheduler import OutputScheduler
from rtgen.midi.ports import FakeOutputPort


def test_internal_clock_maps_beats_and_seconds(fake_clock):
    assert fake_clock.beat_at(fake_clock.now()) == 0.0
    fake_clock.advance(1.5)
    assert fake_clock.beat_at(fake_clock.now()) == pytest.approx(3.0)
    assert fake_clock.time_at(4.0) == pytest.approx(2.0)
    assert fake_clock.source == "internal" and fake_clock.running


@given(
    first=st.floats(20, 300),
    second=st.floats(20, 300),
    elapsed=st.floats(0, 100),
)
def test_tempo_change_keeps_phase(first, second, elapsed):
    clock = FakeClock(tempo_bpm=first)
    clock.advance(elapsed)
    before = clock.beat_at(clock.now())
    clock.set_tempo(second)
    assert clock.beat_at(clock.now()) == pytest.approx(before, abs=1e-9)
    clock.advance(60.0)
    assert clock.beat_at(clock.now()) == pytest.approx(before + second, rel=1e-9)
    assert clock.time_at(clock.beat_at(clock.now())) == pytest.approx(clock.now())


def test_stop_holds_the_beat_and_resume_goes_on(fake_clock):
    fake_clock.advance(1.0)
    fake_clock.stop()
    fake_clock.advance(5.0)
    assert fake_clock.beat_at(fake_clock.now()) == pytest.approx(2.0)
    fake_clock.resume()
    fake_clock.advance(0.5)
    assert fake_clock.beat_at(fake_clock.now()) == pytest.approx(3.0)


def test_tempo_out_of_range_is_a_user_error():
    with pytest.raises(RtgenError, match="tempo"):
        InternalClock(tempo_bpm=0.0)


def _feed_ticks(clock, start_s, tempo_bpm, count, jitter_s=0.0, seed=0, first_tick=0):
    rng = random.Random(seed)
    period = 60.0 / (tempo_bpm * 24)
    times = []
    for k in range(first_tick, first_tick + count):
        t = start_s + k * period + rng.uniform(-jitter_s, jitter_s)
        clock.feed("clock", t)
        times.append(start_s + k * period)
    return times


@pytest.mark.parametrize("seed", range(5))
def test_external_clock_locks_through_jitter_within_a_beat(seed):
    clock = ExternalClock(now=lambda: 0.0)
    clock.feed("start", 0.0)
    ideal = _feed_ticks(clock, 0.01, 100.0, 25, jitter_s=0.002, seed=seed)
    assert clock.tempo_bpm == pytest.approx(100.0, abs=0.5)
    # the beat on the fitted line, not the last jittered tick: one beat after the downbeat
    assert clock.beat_at(ideal[24]) == pytest.approx(1.0, abs=0.05)
    assert clock.time_at(1.0) == pytest.approx(ideal[24], abs=0.002)


def test_external_clock_follows_a_tempo_change():
    clock = ExternalClock(now=lambda: 0.0, window_ticks=36)
    clock.feed("start", 0.0)
    _feed_ticks(clock, 0.0, 120.0, 48)
    t = 48 * 60.0 / (120 * 24)
    _feed_ticks(clock, t, 90.0, 48, jitter_s=0.001)
    assert clock.tempo_bpm == pytest.approx(90.0, abs=0.5)


def test_external_start_stop_continue_and_song_position():
    period = 60.0 / (120.0 * 24)
    clock = ExternalClock(now=lambda: 0.0)
    assert not clock.running
    _feed_ticks(clock, 0.0, 120.0, 48)  # clock runs before start: tempo known, song not moving
    assert not clock.running and clock.beat_at(1.0) == 0.0
    clock.feed("start", 48 * period - period / 2)
    _feed_ticks(clock, 0.0, 120.0, 48, first_tick=48)  # ticks 48.. are beats 0, 1/24, ...
    assert clock.beat_at(48 * period) == pytest.approx(0.0, abs=1e-6)
    assert clock.beat_at(72 * period) == pytest.approx(1.0, abs=1e-6)
    clock.feed("stop", 96 * period)
    assert not clock.running
    assert clock.beat_at(200.0) == pytest.approx(2.0)  # 48 ticks played: the song stands at beat 2
    clock.feed("songpos", 96 * period, 16)  # 16 sixteenths: beat 4
    assert clock.beat_at(200.0) == pytest.approx(4.0)
    clock.feed("continue", 96 * period)
    _feed_ticks(clock, 0.0, 120.0, 24, first_tick=96)
    assert clock.running
    assert clock.beat_at(96 * period) == pytest.approx(4.0, abs=1e-6)
    assert clock.beat_at(119 * period) == pytest.approx(4.0 + 23 / 24, abs=1e-6)


def test_feed_message_accepts_mido_clock_messages_only():
    clock = ExternalClock(now=lambda: 0.0)
    assert clock.feed_message(mido.Message("start"), 0.0)
    assert clock.feed_message(mido.Message("songpos", pos=8), 0.0)
    assert not clock.feed_message(mido.Message("note_on", note=60), 0.0)
    with pytest.raises(ValueError):
        clock.feed("tick", 0.0)


def test_clock_sender_sends_start_ticks_and_stop_through_the_scheduler():
    clock = InternalClock(tempo_bpm=120.0)
    port = FakeOutputPort()
    scheduler = OutputScheduler(port)
    sender = ClockSender(scheduler, clock, lookahead_s=0.05)
    sender.start(first_beat=0.0)
    scheduler.start()
    assert wait_until(lambda: sum(m.type == "clock" for m in port.messages()) >= 30, timeout_s=10.0)
    sender.stop()
    scheduler.stop()
    kinds = [message.type for message in port.messages()]
    assert kinds[0] == "start" and "stop" in kinds
    assert 30 <= kinds.count("clock") <= sender.ticks_sent
    assert kinds.index("stop") > kinds.index("clock") and "clock" not in kinds[kinds.index("stop") :]


def test_no_clock_tick_follows_the_stop(fake_clock):
    port = FakeOutputPort(now=fake_clock.now)
    scheduler = OutputScheduler(port, now=fake_clock.now)  # no thread: pumped on the fake clock
    sender = ClockSender(scheduler, fake_clock, lookahead_s=0.05)  # a tick every 20.8 ms at 120 BPM
    sender.start(first_beat=0.0)
    assert wait_until(lambda: sender.ticks_sent == 3, timeout_s=10.0)  # 0, 20.8 and 41.7 ms: the fake time stands
    fake_clock.advance(0.01)
    scheduler.pump()  # the start and the first tick are due
    sender.stop()
    fake_clock.advance(0.1)
    scheduler.pump()
    assert [m.type for m in port.messages()] == ["start", "clock", "stop"]  # the two ticks queued are dropped


def test_external_clock_starts_a_fresh_fit_after_the_clock_pauses():
    clock = ExternalClock(now=lambda: 0.0)
    clock.feed("start", 0.0)
    _feed_ticks(clock, 0.0, 120.0, 48)
    resume = 48 * 60.0 / (120 * 24) + 2.0  # two silent seconds, then the DAW's clock at 140 BPM
    ideal = _feed_ticks(clock, resume, 140.0, 6)
    assert clock.tempo_bpm == pytest.approx(140.0, abs=0.1)
    assert clock.beat_at(ideal[-1]) == pytest.approx((48 + 5) / 24, abs=1e-6)
