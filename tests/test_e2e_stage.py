"""On stage, over a real JACK server: a held key, a MIDI loop, a dense performer, a flood (issue 9).

Each scenario runs `rtgen run --headless` as its own process and plays the
performer from a ``JackClient``, as tests/test_e2e_jack.py does. Each failed
before its fix (figures in the docstrings) and checks that no note is left
hanging at the synth.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import mido
import pytest
from jack_server import JackClient, heard_on_time, unpaired_notes, wait_until
from rtgen_process import Rtgen
from test_e2e_jack import note_ons

from rtgen.live.timing import percentile
from rtgen.nets.checkpoint import installed_models

pytestmark = pytest.mark.jack


@pytest.fixture(scope="module", autouse=True)
def _models_installed():
    if not [name for name, _ in installed_models() if name != "multi"]:
        pytest.skip("no genre models installed under models/ (rtgen run needs at least one)")


def answers(rtgen: Rtgen) -> int:
    return sum(1 for _, line in rtgen.lines if "call of" in line)


def play_melody(client: JackClient, pitches: list[int], beat_s: float) -> None:
    for pitch in pitches:
        client.send(mido.Message("note_on", note=pitch, velocity=90))
        time.sleep(0.8 * beat_s)
        client.send(mido.Message("note_off", note=pitch))
        time.sleep(0.2 * beat_s)


def onsets_between(client: JackClient, start: float, end: float) -> int:
    return sum(1 for t, _ in note_ons(client.received) if start <= t < end)


def stop_and_check_silence(rtgen: Rtgen, client: JackClient) -> None:
    assert rtgen.terminate() == 0, rtgen.text()
    assert client.wait_for(lambda got: unpaired_notes(got) == {}, timeout_s=3), unpaired_notes(client.received)


def test_a_held_key_is_answered_once_and_all_notes_off_clears_it(jack_server, tmp_path):
    """Before: a note-on without its note-off made rtgen answer every 4 bars with no one playing."""
    tempo = 200.0  # 0.3 s a beat
    rtgen = Rtgen(tmp_path, "--mode", "call-and-response", "--tempo", str(tempo), "--answer-bars", "1")
    with JackClient("held-key") as client:
        client.send_to("rtgen in")
        client.listen_to("rtgen out")
        client.send(mido.Message("note_on", note=48, velocity=90))  # held, its note-off never comes
        play_melody(client, [60, 62, 64], 60.0 / tempo)
        assert rtgen.wait_line(lambda line: "call of 4 notes" in line, timeout_s=5), rtgen.text()
        time.sleep(8 * 4 * 60.0 / tempo)  # eight bars with the key still down
        assert answers(rtgen) == 1, rtgen.text()
        client.send(mido.Message("control_change", control=123, value=0))  # the keyboard's all-notes-off
        play_melody(client, [67, 65], 60.0 / tempo)
        assert rtgen.wait_line(lambda line: "call of 2 notes" in line, timeout_s=5), rtgen.text()
        assert rtgen.status(after=time.perf_counter())["cleared"] == 1
        stop_and_check_silence(rtgen, client)


def jack_port(suffix: str) -> str:
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    return next(port for port in ports if port.endswith(suffix))


def test_output_looped_to_input_is_recognised_and_warned_once(jack_server, tmp_path):
    """Before: 22 of 168 echoes got through and rtgen answered itself every 4 bars."""
    tempo = 160.0
    rtgen = Rtgen(tmp_path, "--mode", "call-and-response", "--tempo", str(tempo))
    with JackClient("looper") as client:
        client.send_to("rtgen in")
        client.listen_to("rtgen out")
        subprocess.run(["jack_connect", jack_port(":rtgen out"), jack_port(":rtgen in")], check=True, timeout=10)
        play_melody(client, [60, 62, 64, 65, 67], 60.0 / tempo)
        time.sleep(20.0)  # five answers' worth of bars, had it answered itself
        status = rtgen.status(after=time.perf_counter())
        warnings = [line for _, line in rtgen.lines if "looped to your input" in line]
        print(f"loop: {answers(rtgen)} answer(s), {status['echoes']} echoes dropped, {status['notes_in']} notes in")
        assert answers(rtgen) == 1, rtgen.text()
        assert status["notes_in"] == 5 and status["echoes"] > 20, status
        assert len(warnings) == 1, rtgen.text()
        stop_and_check_silence(rtgen, client)


@pytest.fixture
def duet(jack_server, tmp_path):
    """``fiddle-reel`` in duet at 120 BPM, and a client wired to both its ports (the performer and the synth)."""
    rtgen = Rtgen(tmp_path, "--mode", "duet", "--tempo", "120", "--preset", "fiddle-reel")
    with JackClient("duet-partner") as client:
        client.send_to("rtgen in")
        client.listen_to("rtgen out")
        assert client.wait_for(lambda got: len(note_ons(got)) >= 2, timeout_s=5), rtgen.text()
        yield rtgen, client
        stop_and_check_silence(rtgen, client)


def test_duet_keeps_playing_under_a_dense_performer(duet):
    """Before: 39 notes in 10 s alone, 6 with block chords four times a second (17 under a 10 notes/s melody)."""
    _, client = duet
    alone_start = time.perf_counter()
    time.sleep(10.0)
    busy_start = time.perf_counter()
    while time.perf_counter() - busy_start < 10.0:  # block chords, four a second
        chord = [60, 64, 67, 72]
        for pitch in chord:
            client.send(mido.Message("note_on", note=pitch, velocity=80))
        time.sleep(0.2)
        for pitch in chord:
            client.send(mido.Message("note_off", note=pitch))
        time.sleep(0.05)
    busy_end = time.perf_counter()
    alone = onsets_between(client, alone_start, busy_start)
    busy = onsets_between(client, busy_start, busy_end)
    print(f"duet: {alone} notes in 10 s alone, {busy} under block chords four times a second")
    assert busy >= 0.6 * alone, (alone, busy)


def test_a_flood_of_input_never_delays_the_output(duet):
    """Before: 25,000 messages a second for 10 s: nothing sent for 12 s, note-offs 3-6 s late (send p99 2,978 ms)."""
    rtgen, client = duet
    rng, sent, start = random.Random(1), 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < 6.0:
        while sent < elapsed * 25000:
            pitch = rng.randrange(40, 90)
            client._out.send_message([0x90, pitch, 64] if sent % 2 == 0 else [0x80, pitch, 0])
            sent += 1
        time.sleep(0.001)
    end = time.perf_counter()
    status = rtgen.status(after=end)
    played = onsets_between(client, start, end)
    print(f"flood: {sent} messages in 6 s; rtgen played {played} notes; status {status}")
    # the failure: nothing sent for seconds; the daemon's own late count (sends over 1 ms late) is the benchmarks'
    assert heard_on_time(status["send_p90_ms"], status["send_max_ms"]) and played >= 6, status  # a note a second
    assert status["dropped"] > 0, status


def test_panic_on_the_output_channel_when_the_daemon_starts(jack_server, tmp_path):
    """A synth left sounding by a run that crashed is silenced by the next one as it starts; SIGUSR1 panics."""
    with JackClient("stale-synth") as synth:
        synth.open_input("in")
        rtgen = Rtgen(tmp_path, "--mode", "call-and-response", "--out", "stale-synth:in")
        try:
            wanted = {(0, 123), (0, 120)}
            assert synth.wait_for(
                lambda got: wanted <= {(m.channel, m.control) for _, m in got if m.type == "control_change"}, 5
            ), synth.messages()
            synth.clear()
            os.kill(rtgen.daemon_pid, signal.SIGUSR1)  # a panic on demand, headless
            assert synth.wait_for(lambda got: any(m.type == "control_change" and m.control == 123 for _, m in got), 3)
            assert rtgen.process.poll() is None  # and the daemon plays on
        finally:
            assert rtgen.terminate() == 0, rtgen.text()


DEAD_CLIENTS: list[JackClient] = []  # clients of a killed server: closing one would crash libjack


def test_a_restarted_jack_server_gets_the_same_ports_connections_and_a_panic(tmp_path):
    """Before: the ports came back as 'rtgen-01:rtgen out', connections were lost, a note was left hanging."""
    from rtgen.midi.jack import JackServer

    server = JackServer().start()
    rtgen = None
    try:
        rtgen = Rtgen(tmp_path, "--mode", "solo", "--tempo", "150")
        synth = JackClient("synth")
        synth.open_input("in")
        subprocess.run(["jack_connect", "rtgen:rtgen out", "synth:in"], check=True, timeout=10)
        assert synth.wait_for(lambda got: len(note_ons(got)) >= 4, timeout_s=5), rtgen.text()
        time.sleep(1.0)  # the watcher has recorded the connection
        server.stop()
        synth._poller.stop()
        DEAD_CLIENTS.append(synth)
        time.sleep(1.0)
        server = JackServer(name=server.name).start()
        revived = JackClient("synth")
        revived.open_input("in")
        assert revived.wait_for(lambda got: len(note_ons(got)) >= 2, timeout_s=10), rtgen.text()
        ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10).stdout.split("\n")
        assert {"rtgen:rtgen out", "rtgen-in:rtgen in"} <= set(ports), ports
        assert any(m.type == "control_change" and m.control == 123 for m in revived.messages())
        assert rtgen.wait_line(lambda line: "reconnected to synth:in" in line, timeout_s=1), rtgen.text()
        assert rtgen.terminate() == 0, rtgen.text()
        assert revived.wait_for(lambda got: unpaired_notes(synth.received + got) == {}, timeout_s=3)
        revived.close()
    finally:
        if rtgen is not None:
            rtgen.terminate()
        server.stop()


def test_rtgen_play_sends_a_file_on_time_and_closes_it(jack_server, tmp_path):
    """`rtgen play FILE.mid --out PORT`: the file's notes at its times, every note closed (one cut by the end)."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150)))  # 0.4 s a beat
    for pitch in (60, 64, 67, 72):
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, time=240))
        track.append(mido.Message("note_on", note=pitch + 12, velocity=60, time=240))  # held past the end
    midi.save(tmp_path / "phrase.mid")
    with JackClient("play-synth") as synth:
        synth.open_input("in")
        result = subprocess.run(
            [sys.executable, "-m", "rtgen", "play", str(tmp_path / "phrase.mid"), "--out", "play-synth:in"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert synth.wait_for(lambda got: unpaired_notes(got) == {} and len(note_ons(got)) == 8, timeout_s=3)
        onsets = [t for t, m in note_ons(synth.received) if m.velocity == 90]
        gaps_ms = [(b - a) * 1000 for a, b in zip(onsets, onsets[1:], strict=False)]
        print(f"rtgen play: onsets {[round(g, 2) for g in gaps_ms]} ms apart (the file says 400)")
        off_ms = sorted(abs(gap - 400) for gap in gaps_ms)
        assert heard_on_time(percentile(off_ms, 0.9), off_ms[-1]), gaps_ms


@pytest.mark.jack
def test_follow_mode_moves_the_weights_toward_the_genre_the_performer_plays(jack_server, tmp_path):
    """Two phrases of a real validation chorale (never the classifier's training split), played over JACK."""
    from rtgen.daemon.client import DaemonClient
    from rtgen.evaluate.fidelity import genre_sources, load_pieces
    from rtgen.evaluate.follow import phrases

    _, valid = load_pieces(genre_sources(["chorale"]), max_train=1)
    calls = next(cut for piece in valid["chorale"] if len(cut := phrases(piece, 2, 2)) == 2 and len(cut[1]) >= 12)
    tempo = 120.0
    genres = "folk=5,fiddle=5,chorale=5,renaissance=5"
    rtgen = Rtgen(
        tmp_path, "--mode", "call-and-response", "--tempo", str(tempo), "--answer-bars", "1", "--genres", genres
    )
    client = DaemonClient(rtgen.osc_port).connect(timeout_s=10)
    try:
        client.set_controls(follow=True)
        with JackClient("chorale-singer") as singer:
            singer.send_to("rtgen in")
            for count, call in enumerate(calls, start=1):
                events = [(float(n.start) * 0.5, mido.Message("note_on", note=n.pitch, velocity=80)) for n in call]
                events += [(float(n.end) * 0.5 - 0.01, mido.Message("note_off", note=n.pitch)) for n in call]
                singer.send_phrase(sorted(events, key=lambda event: event[0]))
                assert rtgen.wait_line(lambda line: "call of" in line, timeout_s=5, after=time.perf_counter() - 3)
                assert wait_until(lambda n=count: answers(rtgen) >= n, timeout_s=5), rtgen.text()
                time.sleep(3.0)  # the answer's bar
        snap = client.snapshot()
        weights, heard = snap.controls.weights, snap.heard
        print(f"follow: after two chorale phrases, heard {heard}; weights {weights}")
        assert max(heard, key=heard.get) == "chorale" and max(weights, key=weights.get) == "chorale"
        assert weights["chorale"] > 5.0
    finally:
        client.close()
        assert rtgen.terminate() == 0, rtgen.text()
