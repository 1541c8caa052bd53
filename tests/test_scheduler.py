"""The output scheduler on a fake clock (``pump``) and, once, on its real thread."""

from __future__ import annotations

import gc
import os
import threading

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jack_server import wait_until

from rtgen.live.clock import FakeClock
from rtgen.live.scheduler import DAEMON_NICE, SPIN_S, OutputScheduler, is_note_off, is_note_on, raise_nice
from rtgen.live.timing import GcMonitor, freeze_gc, percentile
from rtgen.midi.ports import FakeOutputPort


def on(pitch, velocity=90, channel=0):
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch, channel=0):
    return mido.Message("note_off", note=pitch, velocity=0, channel=channel)


def make(fake_clock, **options):
    port = FakeOutputPort(now=fake_clock)
    return OutputScheduler(port, now=fake_clock, **options), port


def run_until(fake_clock, scheduler, t, step_s=0.001):
    while fake_clock.now() < t:
        fake_clock.advance(step_s)
        scheduler.pump()


def assert_balanced(messages):
    """Every note-on is closed by a note-off after it, and no note-off comes without one."""
    sounding = set()
    for message in messages:
        key = (message.channel, message.note) if hasattr(message, "note") else None
        if is_note_on(message):
            assert key not in sounding, f"second note-on for {key}"
            sounding.add(key)
        elif is_note_off(message):
            assert key in sounding, f"note-off without note-on for {key}"
            sounding.discard(key)
    assert not sounding, f"hanging notes {sounding}"


def test_sends_in_time_order_at_planned_times(fake_clock):
    scheduler, port = make(fake_clock)
    for t, pitch in [(0.30, 64), (0.10, 60), (0.20, 62)]:
        scheduler.schedule_note(t, t + 0.05, pitch)
    run_until(fake_clock, scheduler, 0.5)
    assert [m.note for m in port.messages() if is_note_on(m)] == [60, 62, 64]
    times = [t for t, _ in port.sent]
    assert times == sorted(times)
    assert port.sent[0][0] == pytest.approx(0.10, abs=0.0011)
    stats = scheduler.stats()
    assert stats.count == 6 and stats.late == 0 and stats.max_ms <= 1.1
    assert_balanced(port.messages())


def test_late_events_are_sent_at_once_and_counted(fake_clock):
    scheduler, port = make(fake_clock)
    fake_clock.advance(1.0)
    scheduler.schedule(0.5, on(60))
    scheduler.schedule(0.9995, off(60))
    assert scheduler.pump() == 2
    stats = scheduler.stats()
    assert stats.late == 1 and stats.count == 2
    assert stats.max_ms == pytest.approx(500.0)


def test_retrigger_closes_the_sounding_note_first(fake_clock):
    scheduler, port = make(fake_clock)
    scheduler.schedule(0.1, on(60))
    scheduler.schedule(0.2, on(60))
    scheduler.schedule(0.3, off(60))
    scheduler.schedule(0.4, off(60))
    run_until(fake_clock, scheduler, 0.35)
    assert [m.type for m in port.messages()] == ["note_on", "note_off", "note_on"]
    assert scheduler.sounding() == {(0, 60)}
    run_until(fake_clock, scheduler, 0.45)
    assert_balanced(port.messages())
    assert scheduler.sounding() == frozenset()


def test_stray_note_off_is_dropped(fake_clock):
    scheduler, port = make(fake_clock)
    scheduler.schedule(0.0, off(61))
    scheduler.pump()
    assert port.sent == [] and scheduler.stray_offs == 1


def test_panic_sends_offs_then_cc64_123_120_on_channels_used(fake_clock):
    scheduler, port = make(fake_clock)
    scheduler.schedule_note(0.0, 10.0, 60, channel=0)
    scheduler.schedule_note(0.0, 10.0, 67, channel=3)
    scheduler.schedule_note(5.0, 6.0, 72, channel=0)
    scheduler.pump()
    port.sent.clear()
    scheduler.panic()
    messages = port.messages()
    assert [(m.type, m.note) for m in messages[:2]] == [("note_off", 60), ("note_off", 67)]
    controls = [(m.channel, m.control, m.value) for m in messages[2:]]
    assert controls == [(0, 64, 0), (0, 123, 0), (0, 120, 0), (3, 64, 0), (3, 123, 0), (3, 120, 0)]
    run_until(fake_clock, scheduler, 7.0, step_s=0.1)  # the dropped note at 5 s never plays
    assert len(port.messages()) == len(messages)
    assert scheduler.sounding() == frozenset()


def test_cancel_after_drops_later_notes_but_closes_sounding_ones(fake_clock):
    scheduler, port = make(fake_clock)
    scheduler.schedule_note(0.1, 0.9, 60)  # sounds across the cut: keeps its note-off
    scheduler.schedule_note(0.2, 0.3, 62)  # ends before the cut
    scheduler.schedule_note(0.6, 0.7, 64)  # starts after the cut: dropped
    scheduler.schedule(0.4, on(65))  # no note-off scheduled yet: closed at the cut
    scheduler.schedule(0.8, mido.Message("control_change", control=1, value=5))
    scheduler.cancel_after(0.5)
    run_until(fake_clock, scheduler, 1.0)
    messages = port.messages()
    assert 64 not in [m.note for m in messages if hasattr(m, "note")]
    assert any(m.type == "control_change" for m in messages)
    assert_balanced(messages)


def test_max_note_length_closes_a_note_left_open(fake_clock):
    scheduler, port = make(fake_clock, max_note_s=2.0)
    scheduler.schedule(0.0, on(60))
    run_until(fake_clock, scheduler, 2.5, step_s=0.01)
    assert_balanced(port.messages())
    scheduler.schedule(2.6, off(60))  # the engine's late note-off finds nothing open
    run_until(fake_clock, scheduler, 2.7, step_s=0.01)
    assert scheduler.stray_offs == 1


events = st.lists(
    st.tuples(st.floats(0, 2), st.floats(0, 1), st.integers(60, 64), st.integers(0, 1)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(events, st.one_of(st.none(), st.floats(0, 3)))
def test_every_note_on_gets_its_note_off(notes, cut):
    clock = FakeClock()
    scheduler, port = make(clock)
    for start, length, pitch, channel in notes:
        scheduler.schedule_note(start, start + length, pitch, channel=channel)
    if cut is not None:
        scheduler.cancel_after(cut)
    run_until(clock, scheduler, 3.5, step_s=0.01)
    scheduler.stop()
    assert_balanced([m for m in port.messages() if m.type != "control_change"])


def test_output_thread_sends_and_stop_closes_everything():
    port = FakeOutputPort()
    scheduler = OutputScheduler(port)
    scheduler.start()
    start = port.now() + 0.02
    for k in range(20):
        scheduler.schedule_note(start + k * 0.005, start + k * 0.005 + 0.003, 60 + k % 5)
    scheduler.schedule(start + 60.0, on(90))  # far ahead: never played, nothing left hanging
    assert wait_until(lambda: scheduler.stats().count >= 40, timeout_s=10.0)
    scheduler.stop()
    messages = port.messages()
    assert_balanced([m for m in messages if m.type != "control_change"])
    assert [m.control for m in messages[-3:]] == [64, 123, 120]
    stats = scheduler.stats()
    print(f"\nthread send error: p50 {stats.p50_ms:.3f} ms, p99 {stats.p99_ms:.3f} ms, max {stats.max_ms:.3f} ms")


class BreaksOnPitch(FakeOutputPort):
    """A port whose driver fails with an unexpected error on one pitch."""

    def send(self, message):
        if getattr(message, "note", None) == 99:
            raise KeyError("driver bug")
        super().send(message)


def test_a_dying_output_thread_still_closes_its_notes():
    port = BreaksOnPitch()
    scheduler = OutputScheduler(port)
    scheduler.start()
    start = port.now() + 0.01
    scheduler.schedule_note(start, start + 30.0, 60)
    scheduler.schedule(start + 0.01, on(99))
    assert wait_until(lambda: scheduler.error is not None, timeout_s=10.0)
    scheduler.stop()
    assert isinstance(scheduler.error, KeyError)
    assert_balanced([m for m in port.messages() if m.type != "control_change"])
    assert scheduler.sounding() == frozenset()


def test_percentile_gc_monitor_and_freeze():
    assert percentile([], 0.5) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    monitor = GcMonitor()
    monitor.install()
    try:
        gc.collect()
    finally:
        monitor.uninstall()
    assert monitor.pauses >= 1 and monitor.max_s > 0.0
    try:
        assert freeze_gc() > 0
    finally:
        gc.unfreeze()


@pytest.mark.jack
def test_the_daemons_threads_inherit_its_raised_nice_value_or_it_says_it_was_refused(monkeypatch):
    """The engine thread, started after ``raise_nice``, is not preempted by every busy program while it holds the
    interpreter lock the FIFO output thread needs (nice is per thread on Linux: run it on a throwaway one)."""
    seen: list = []

    def daemon_main() -> None:
        granted = raise_nice()
        child = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()
        child.join()
        seen.append(granted)

    thread = threading.Thread(target=daemon_main)
    thread.start()
    thread.join()
    assert seen == [DAEMON_NICE, True] or (seen[1] is False and os.geteuid() != 0)

    def refused(*args) -> None:
        raise PermissionError("Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    assert raise_nice() is False


def test_realtime_benchmark_reports_every_note(jack_server):
    from rtgen.bench.realtime import RealtimeBenchConfig, format_report, run_realtime_bench

    report = run_realtime_bench(RealtimeBenchConfig(notes=40, tempo_bpm=960.0))
    print("\n" + format_report(report))
    assert report["setup"]["jack_server"] == jack_server.name and not report["setup"]["private_server"]
    assert report["send_time"]["failed"] == 0
    assert report["send_time"]["events"] >= 79  # 40 note-ons, their note-offs but perhaps the last
    received, lost = report["end_to_end"]["received"], report["end_to_end"]["lost"]
    assert received == 40 and lost == 0  # the synchronous dummy server loses nothing (rtgen bench jack)


class LateTimer:
    """A fake time base: each read takes 10 us, each sleep wakes ``late_s`` after it was due."""

    def __init__(self, start: float, late_s: float) -> None:
        self.t, self.late_s = start, late_s

    def now(self) -> float:
        self.t += 1e-5
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds + self.late_s


@pytest.mark.parametrize("start", [0.0, 5.3, 1000.1, 12345.6])  # where a running sum of periods drifted
@pytest.mark.parametrize("late_s", [0.0001, 0.004])
def test_the_wake_up_floor_waits_for_each_deadline_as_the_output_thread_does(start, late_s):
    import queue

    from rtgen.bench.soak import wake_floor

    results = queue.Queue()
    timer = LateTimer(start, late_s)
    wake_floor(0.3, results, None, period_s=0.05, now=timer.now, sleep=timer.sleep)
    late = results.get_nowait()
    begin = late[0][0] - 0.05
    assert [due for due, _ in late] == pytest.approx([begin + k * 0.05 for k in range(1, 6)], abs=1e-9)  # 50-250 ms
    expected_ms = max(0.0, late_s - SPIN_S) * 1e3  # a sleep woken late is late; the spin takes up the rest
    assert all(expected_ms <= ms <= expected_ms + 0.05 for _, ms in late), late


def test_the_soak_sets_the_sends_beside_the_machines_own_wake_up_floor():
    from rtgen.bench.soak import SoakConfig, add_floor, format_report, report

    late = [(k * 0.05, 0.2) for k in range(400)] + [(10.5 + k * 0.01, 4.0) for k in range(5)]
    late.sort()
    samples = [{"t_s": t, "t": t, "rss_kib": 1000, "send_p99_ms": 0.4} for t in (10.0, 20.0)]
    samples[1]["send_p99_ms"] = 5.5
    add_floor(samples, late, window_s=10.0)
    assert [s["floor_p99_ms"] for s in samples] == [0.2, 4.0]  # 5 late wakes of 205 in the second span: p99 4 ms
    figures = report(SoakConfig(minutes=0.5), samples, [], 1, 0)
    assert figures["floor_p99_ms"]["median"] == 0.2 and figures["floor_p99_ms"]["max"] == 4.0
    assert figures["samples_over_floor_by_1ms"] == 1  # 5.5 ms against a floor of 4: the daemon's own 1.5 ms
    assert "floor p99: median 0.200 ms" in format_report(figures | {"take": None})
