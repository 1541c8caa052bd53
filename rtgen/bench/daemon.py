"""The daemon's two latency figures, measured on the running engine thread with the shipped models.

* Phrase end to answer: the performer stops; after ``phrase_gap_beats`` of
  silence the listener ends the phrase, and the answer is due on the next beat
  (``answer_start = "beat"``). What counts is how late the first answering
  note is sent *beyond* that musical wait (target <= 10 ms), and how long the
  engine thread took to prime the models and schedule the answer.
* Control change to the first note that reflects it: in solo mode the pitch
  range jumps between two octaves that do not overlap; the first note-on in the
  new octave measures how fast a knob is heard (the lookahead, 50 ms, plus the
  wait for the next note), and any note-on in the old octave after the change
  shows how far the already-generated lookahead reached.

Both run in-process on the real clock, engine thread and output scheduler,
with in-process ports (no MIDI system needed); each returns a plain dict
section, like ``rtgen.bench.realtime``.
"""

from __future__ import annotations

import time

import mido

from rtgen.daemon.commands import SetControls
from rtgen.live.timing import summary_ms

LOW, HIGH = (48, 59), (72, 83)  # the two pitch ranges the control benchmark switches between


def _daemon(mode: str, tempo_bpm: float, answer_start: str = "bar"):
    from rtgen.daemon.config import DaemonConfig
    from rtgen.daemon.process import Daemon
    from rtgen.live.player import PlayerConfig
    from rtgen.midi.ports import FakeInputPort, FakeOutputPort

    config = DaemonConfig(
        mode=mode,
        tempo_bpm=tempo_bpm,
        record=False,
        seed=0,
        player=PlayerConfig(answer_bars=1, answer_start=answer_start),
    )
    daemon = Daemon(config, in_port=FakeInputPort(), out_port=FakeOutputPort())
    daemon.open()
    daemon.launch()
    return daemon


def _note_ons(daemon, after: float) -> list[tuple[float, mido.Message]]:
    return [(t, m) for t, m in list(daemon.out_port.sent) if t > after and m.type == "note_on" and m.velocity]


def answer_section(trials: int = 4, tempo_bpm: float = 240.0) -> dict:
    """Calls of one bar of quarter notes; the answer starts on the beat after the phrase ends."""
    daemon = _daemon("call-and-response", tempo_bpm, answer_start="beat")
    clock, player = daemon.clock, daemon.player
    beyond, compute, waits = [], [], []
    try:
        for trial in range(trials):
            bar = 4 * (int(clock.beat_at(clock.now()) + 1.0) // 4 + 1)
            for i, pitch in enumerate((60, 62, 64, 65)):
                daemon.in_port.push(mido.Message("note_on", note=pitch + trial, velocity=90), clock.time_at(bar + i))
                daemon.in_port.push(mido.Message("note_off", note=pitch + trial), clock.time_at(bar + i + 0.9))
            deadline = clock.time_at(bar + 12)
            while len(player.answer_starts) <= trial and time.perf_counter() < deadline:
                time.sleep(0.01)
            if len(player.answer_starts) <= trial:
                continue
            detected, start_beat = player.answer_starts[trial]
            start = clock.time_at(start_beat)
            while time.perf_counter() < clock.time_at(start_beat + 4.5):
                time.sleep(0.01)
            first = _note_ons(daemon, detected)
            if first:
                beyond.append(max(0.0, first[0][0] - start))
                waits.append(start - detected)
                compute.append(player.phrase_latency_ms[trial] / 1e3)
    finally:
        daemon.request_stop()
        daemon.shutdown()
    return {
        "trials": trials,
        "answered": len(beyond),
        "tempo_bpm": tempo_bpm,
        "musical_wait_p50_ms": summary_ms(waits)["p50_ms"],
        **{f"beyond_wait_{k}": v for k, v in summary_ms(beyond).items()},
        **{f"prime_and_schedule_{k}": v for k, v in summary_ms(compute).items()},
        "target_ms": 10.0,
    }


def control_section(trials: int = 8, tempo_bpm: float = 120.0, settle_s: float = 1.5) -> dict:
    """Solo playing; the pitch range jumps between two octaves ``trials`` times."""
    daemon = _daemon("solo", tempo_bpm)
    heard, stale = [], []
    try:
        time.sleep(settle_s)
        for trial in range(trials):
            low, high = HIGH if trial % 2 == 0 else LOW
            changed = time.perf_counter()
            daemon.submit(SetControls((("pitch_min", low), ("pitch_max", high))))
            time.sleep(settle_s)
            ons = _note_ons(daemon, changed)
            inside = [t for t, m in ons if low <= m.note <= high]
            if inside:
                heard.append(inside[0] - changed)
            stale.extend(t - changed for t, m in ons if not low <= m.note <= high)
    finally:
        daemon.request_stop()
        daemon.shutdown()
    return {
        "trials": trials,
        "heard": len(heard),
        "tempo_bpm": tempo_bpm,
        "lookahead_ms": daemon.player.config.lookahead_s * 1e3,
        **{f"first_reflecting_{k}": v for k, v in summary_ms(heard).items()},
        "stale_notes": len(stale),
        "stale_max_ms": max(stale, default=0.0) * 1e3,
    }


def run_daemon_bench(answer_trials: int = 4, control_trials: int = 8) -> dict:
    return {"answer": answer_section(answer_trials), "control": control_section(control_trials)}


def format_daemon_report(report: dict) -> str:
    answer, control = report["answer"], report["control"]
    return "\n".join(
        [
            f"phrase end -> answer ({answer['answered']}/{answer['trials']} calls at {answer['tempo_bpm']:g} BPM, "
            f"answer on the next beat, musical wait p50 {answer['musical_wait_p50_ms']:.0f} ms): first note "
            f"{answer['beyond_wait_p50_ms']:.2f} ms beyond the wait p50, max {answer['beyond_wait_max_ms']:.2f} ms "
            f"(target <= {answer['target_ms']:g} ms); priming and scheduling p50 "
            f"{answer['prime_and_schedule_p50_ms']:.1f} ms, max {answer['prime_and_schedule_max_ms']:.1f} ms",
            f"control change -> first note reflecting it ({control['heard']}/{control['trials']} changes at "
            f"{control['tempo_bpm']:g} BPM, lookahead {control['lookahead_ms']:.0f} ms): p50 "
            f"{control['first_reflecting_p50_ms']:.0f} ms, max {control['first_reflecting_max_ms']:.0f} ms "
            f"(includes the wait for the next note); {control['stale_notes']} notes from before the change, "
            f"the last {control['stale_max_ms']:.0f} ms after it",
        ]
    )
