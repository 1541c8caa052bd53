"""`rtgen run --headless` as a subprocess, driven over a real JACK server by a separate client.

Each scenario starts the daemon (`python -m rtgen run --headless`), waits for
its `rtgen: ready` line, and plays the other side from a ``JackClient``:
a keyboard into 'rtgen in', a synth on 'rtgen out', a DAW sending clock.
Times on both sides are ``time.perf_counter()`` (CLOCK_MONOTONIC), which
processes on one machine share, so the client can compare its own grid with
the daemon's reported beat.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import mido
import pytest
from jack_server import AUDIBLE_MS, JackClient, heard_on_time, unpaired_notes, wait_until
from rtgen_process import Rtgen

from rtgen.engine.variation import is_vae
from rtgen.live.timing import percentile
from rtgen.nets.checkpoint import installed_models
from rtgen.paths import shipped_zoo_dir

pytestmark = pytest.mark.jack
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _models_installed():
    if not [name for name, _ in installed_models() if name != "multi"]:
        pytest.skip("no genre models installed under models/ (rtgen run needs at least one)")


@pytest.fixture(scope="module", autouse=True)
def _quiet_collector():
    """Keep this process's garbage collector off the objects earlier tests left behind.

    The client stamps arrivals in a Python callback; a full collection over a
    big test session's heap holds the interpreter lock for tens of
    milliseconds and would show up as rtgen's lateness.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def note_ons(received, after: float = 0.0) -> list[tuple[float, mido.Message]]:
    return [(t, m) for t, m in received if t >= after and m.type == "note_on" and m.velocity > 0]


def test_call_and_response_answers_from_the_next_bar(jack_server, jack_client, tmp_path):
    tempo = 200.0  # 0.3 s a beat keeps the scenario short
    rtgen = Rtgen(tmp_path, "--mode", "call-and-response", "--tempo", str(tempo), "--answer-bars", "1")
    try:
        jack_client.send_to("rtgen in")
        jack_client.listen_to("rtgen out")
        status = rtgen.status(after=time.perf_counter())
        beat_s = 60.0 / tempo

        def beat_at(t: float) -> float:
            return status["beat"] + (t - status["t"]) / beat_s

        def time_at(beat: float) -> float:
            return status["t"] + (beat - status["beat"]) * beat_s

        bar = 4 * (int(beat_at(time.perf_counter()) + 1.0) // 4 + 1)
        pitches = [62, 64, 66, 67, 69, 67, 66, 64]  # two bars of quarter notes
        events = []
        for i, pitch in enumerate(pitches):
            events.append((i * beat_s, mido.Message("note_on", note=pitch, velocity=90)))
            events.append((i * beat_s + 0.8 * beat_s, mido.Message("note_off", note=pitch)))
        jack_client.send_phrase(events, start=time_at(bar))
        assert jack_client.wait_for(lambda got: note_ons(got), timeout_s=10), rtgen.text()
        first_t, _ = note_ons(jack_client.received)[0]
        # the call ends on beat bar+8 (its last note-off a little before); silence is heard a beat later;
        # the answer starts on the next bar line: bar + 12
        assert abs(first_t - time_at(bar + 12)) * 1000 < AUDIBLE_MS, (beat_at(first_t) - bar, rtgen.text())
        answer_end = time_at(bar + 16)
        time.sleep(max(0.0, answer_end + 0.3 - time.perf_counter()))  # a moment in the music, not an event
        received = list(jack_client.received)
        # nothing starts after the answer's bar (a note-on later than 30 ms is skipped; 30 ms more for the send)
        late = [round(beat_at(t) - bar, 3) for t, _ in note_ons(received) if t >= time_at(bar + 16) + 0.06]
        assert not late, (late, rtgen.text())
        assert jack_client.wait_for(lambda got: unpaired_notes(got) == {}, timeout_s=2), unpaired_notes(received)
        assert rtgen.wait_line(lambda line: "call of 8 notes" in line, timeout_s=1)
    finally:
        assert rtgen.terminate() == 0, rtgen.text()


@pytest.fixture
def solo(jack_server, tmp_path):
    """A daemon playing solo; each scenario gets its own, so none inherits another's state."""
    rtgen = Rtgen(tmp_path, "--mode", "solo", "--tempo", "150")
    yield rtgen
    rtgen.terminate()


def _send_junk(client: JackClient, seconds: float, rng: random.Random) -> int:
    """2,000 junk messages a second into 'rtgen in' for ``seconds``; how many were sent."""
    junk = [
        lambda: [0xF0, *[rng.randrange(128) for _ in range(rng.randrange(1, 200))], 0xF7],  # sysex
        lambda: [rng.randrange(128), rng.randrange(128)],  # running-status fragment: data bytes only
        lambda: [0x80 | rng.randrange(16), rng.randrange(128), 0],  # note-off with no note-on
        lambda: [0xB0, 64, rng.choice((0, 127))],  # sustain pedal flapping
        lambda: [0xE0, rng.randrange(128), rng.randrange(128)],  # pitch bend
    ]
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < elapsed * 2000:
            client._out.send_message(rng.choice(junk)())
            sent += 1
        time.sleep(0.002)
    return sent


def test_input_abuse_changes_nothing(solo):
    with JackClient("abuser") as client:
        client.send_to("rtgen in")
        client.listen_to("rtgen out")
        assert client.wait_for(lambda got: len(note_ons(got)) >= 2, timeout_s=5), solo.text()
        rng = random.Random(7)
        _send_junk(client, 3.0, rng)  # one-time costs of the input path (buffers, arenas) land before the baseline
        rss_before = solo.rss_kib()
        sent = _send_junk(client, 10.0, rng)
        status = solo.status(after=time.perf_counter())
        rss_after = solo.rss_kib()
        assert solo.process.poll() is None, solo.text()
        assert status["ignored"] + status["malformed"] + status["dropped"] > 0.5 * sent, status
        assert rss_after - rss_before < 30 * 1024, (rss_before, rss_after, status)  # KiB
        count = len(note_ons(client.received))
        assert client.wait_for(lambda got: len(note_ons(got)) > count + 2, timeout_s=5)  # still playing
        print(f"abuse: {sent} messages in 10 s; status {status}; RSS {rss_before} -> {rss_after} KiB")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP (a closed terminal)"])
def test_a_stop_signal_mid_note_closes_every_note_then_cc123(solo, sig):
    with JackClient("synth") as client:
        client.listen_to("rtgen out")

        def sounding(got) -> bool:
            return bool(unpaired_notes(got)) and len(note_ons(got)) >= 3

        assert client.wait_for(sounding, timeout_s=5), solo.text()
        assert solo.terminate(sig=sig) == 0, solo.text()
        client.wait_for(lambda got: any(m.type == "control_change" and m.control == 120 for _, m in got), 2)
        received = list(client.received)
        tail = [str(m) for _, m in received[-12:]]
        balance = unpaired_notes([(t, m) for t, m in received if m.type != "control_change"])
        assert balance == {}, f"{tail}\n{solo.text()}"
        controls = [m.control for _, m in received if m.type == "control_change"]
        assert 123 in controls, f"{tail}\n{solo.text()}"
        last_note = max(i for i, (_, m) in enumerate(received) if m.type in ("note_on", "note_off"))
        assert any(m.type == "control_change" and m.control == 123 for _, m in received[last_note:])
    assert solo.wait_line(lambda line: "take written to" in line, timeout_s=1), solo.text()


def send_clock(client: JackClient, tempo: float, jitter_s: float, ticks: list[float], stop: threading.Event) -> None:
    """Send start, then MIDI clock at ``tempo`` with uniform +-``jitter_s``; ideal tick times go to ``ticks``.

    Sleeps rather than spins, so the client's receiving callback gets the interpreter lock on time, and
    asks for real-time priority (as a DAW's clock thread has) so a busy machine does not delay the ticks.
    """
    realtime = hasattr(os, "sched_setscheduler")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
    except (OSError, AttributeError):
        realtime = False
    print(f"clock sender at {'real-time' if realtime else 'normal'} priority")
    period = 60.0 / tempo / 24
    rng = random.Random(3)
    start = time.perf_counter() + 0.05
    client.send(mido.Message("start"))
    k = 0
    while not stop.is_set():
        ideal = start + k * period
        time.sleep(max(0.0, ideal + rng.uniform(-jitter_s, jitter_s) - time.perf_counter()))
        client.send(mido.Message("clock"))
        ticks.append(ideal)
        k += 1


def test_external_clock_tempo_and_grid(jack_server, jack_client, tmp_path):
    # the fiddle reel plays the most notes a bar of the shipped presets: enough for a percentile
    # JACK delivers each note on the next period boundary; like a DAW's MIDI offset, rtgen sends one period
    # early by default, reading the period from the server
    rtgen = Rtgen(tmp_path, "--preset", "fiddle-reel", "--mode", "solo", "--clock", "external", "--tempo", "120")
    assert rtgen.wait_line(lambda line: "output offset -1.333 ms" in line, timeout_s=1), rtgen.text()
    ticks: list[float] = []
    stop = threading.Event()
    sender = threading.Thread(target=send_clock, args=(jack_client, 100.0, 0.002, ticks, stop))
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the receiving callback stamps as soon as a message arrives
    try:
        jack_client.send_to("rtgen in")
        jack_client.listen_to("rtgen out")
        sender.start()
        assert wait_until(lambda: len(ticks) > 24 + 6, timeout_s=3)  # one beat and a little
        followed = rtgen.status(after=time.perf_counter())
        assert followed["tempo_bpm"] == pytest.approx(100.0, abs=0.5), followed
        wait_until(lambda: len(ticks) > 24 * 14, timeout_s=10)
        stop.set()
        sender.join()
        # the client's grid: its own tick times (without the jitter it added), at rtgen's resolution of
        # 12 steps a beat (2 ticks), which holds the sixteenths and the triplets a model may play
        grid_s = 2 * 60.0 / 100.0 / 24
        errors_ms = []
        for t, _ in note_ons(jack_client.received):
            if ticks[0] + 1.0 < t < ticks[-1]:  # after the follower has settled, while ticks still come
                steps = round((t - ticks[0]) / grid_s)
                errors_ms.append(abs(t - (ticks[0] + steps * grid_s)) * 1000)
        errors_ms.sort()
        assert len(errors_ms) >= 8, rtgen.text()
        status = rtgen.status()  # after the clock stopped: the counters of the whole run
        median = percentile(errors_ms, 0.5)
        jitter = sorted(abs(e - median) for e in errors_ms)
        p99, jitter_p99 = percentile(errors_ms, 0.99), percentile(jitter, 0.99)
        print(
            f"external clock: {len(errors_ms)} notes, grid error p50 {median:.2f} ms, p99 {p99:.2f} ms,"
            f" jitter around the median p99 {jitter_p99:.2f} ms; tempo after one beat {followed['tempo_bpm']:.2f};"
            f" late {status['late']}; lost ticks filled in {status['repaired_ticks']}"
        )
        assert heard_on_time(percentile(errors_ms, 0.9), errors_ms[-1]), errors_ms
        assert heard_on_time(percentile(jitter, 0.9), jitter[-1]), errors_ms
    finally:
        stop.set()
        if sender.is_alive():
            sender.join()
        sys.setswitchinterval(switch_interval)
        assert rtgen.terminate() == 0, rtgen.text()


def test_output_peer_vanishes_and_returns(jack_server, tmp_path):
    with JackClient("fluid") as synth:
        synth.open_input("in")
        rtgen = Rtgen(tmp_path, "--mode", "solo", "--tempo", "150", "--out", "fluid:in")
        try:
            assert synth.wait_for(lambda got: len(note_ons(got)) >= 2, timeout_s=5), rtgen.text()
            gone = time.perf_counter()
            synth.close_input()
            assert rtgen.wait_line(lambda line: "vanished" in line, timeout_s=3, after=gone), rtgen.text()
            synth.clear()
            back = time.perf_counter()
            synth.open_input("in")
            assert rtgen.wait_line(lambda line: "reconnected" in line, timeout_s=2.5, after=back), rtgen.text()
            assert synth.wait_for(lambda got: len(note_ons(got)) >= 2, timeout_s=3), rtgen.text()
            reconnected = synth.received[0][0] - back
            print(f"output peer returned; first message after {reconnected * 1000:.0f} ms")
            assert reconnected < 2.0
        finally:
            assert rtgen.terminate() == 0, rtgen.text()
        synth.wait_for(lambda got: any(m.type == "control_change" and m.control == 120 for _, m in got), 2)
        assert unpaired_notes(list(synth.received)) == {}


def test_a_window_model_plays_fused_with_a_shipped_one(jack_server, jack_client, tmp_path, monkeypatch):
    """A bidirectional window model (it recomputes its window every token) plays live beside fiddle."""
    import torch

    from rtgen.encoding import EventEncoding
    from rtgen.nets.architectures import build_model
    from rtgen.nets.checkpoint import save_checkpoint
    from rtgen.nets.config import NetConfig

    encoding = EventEncoding()
    torch.manual_seed(0)
    config = NetConfig(vocab_size=len(encoding), embedding_dim=16, hidden_sizes=(32, 32), family="bilstm2", window=64)
    save_checkpoint(tmp_path / "models" / "bilstm2", build_model(config), encoding, {"genre": "bilstm2"})
    monkeypatch.setenv("RTGEN_MODELS", str(tmp_path / "models"))
    with plays_solo_on_time(jack_client, Rtgen(tmp_path, *SOLO, "--genres", "bilstm2=1,fiddle=1"), timeout_s=15):
        pass


def _partner(network: str) -> str | None:
    """A shipped model of ``network``'s vocabulary to fuse it with: the fiddle genre model for event tokens, the
    fiddle paper's 128-step LSTM for time steps, the other seed-paper LSTM for chord tokens."""
    kind = _encoding_name(network)
    if is_vae(network):
        return None  # a phrase VAE plays alone (rtgen.engine.variation)
    if kind == "event":
        return "fiddle"
    same = sorted(n for n in SHIPPED_NETWORKS if n != network and _encoding_name(n) == kind)
    return "fiddle-timestep-128" if "fiddle-timestep-128" in same else (same[0] if same else None)


def _encoding_name(network: str) -> str:
    return json.loads((shipped_zoo_dir() / network / "meta.json").read_text())["encoding"]["name"]


SHIPPED_NETWORKS = sorted(d.name for d in shipped_zoo_dir().iterdir() if (d / "meta.json").is_file())


@pytest.mark.parametrize("network", SHIPPED_NETWORKS)
def test_every_shipped_network_plays_live_fused_then_alone(jack_server, jack_client, tmp_path, network):
    """Each seed paper's shipped network (models/zoo/, full size) plays through the daemon over JACK on time, fused
    with a shipped model of its vocabulary (every token is a step of both, so the network is stepped live and paced
    by the slower of the two; the window models recompute their window each step), then alone once OSC sets its
    partner's weight to 0: what it plays then is its own. A phrase VAE plays alone from the start. One daemon a
    network: a second daemon for the run alone doubled the test's time."""
    from rtgen.daemon.client import DaemonClient

    partner = _partner(network)
    genres = f"{network}=1" if partner is None else f"{network}=1,{partner}=1"
    rtgen = Rtgen(tmp_path, *SOLO, "--genres", genres)
    with plays_solo_on_time(jack_client, rtgen, timeout_s=20):
        if partner is not None:
            client = DaemonClient(rtgen.osc_port).connect()
            client.set_controls(weights={network: 1.0, partner: 0.0})
            assert client.wait_for(lambda s: s.controls.weights.get(partner) == 0.0, timeout_s=2.0), rtgen.text()
            client.close()
            alone = time.perf_counter() + 0.5  # past the lookahead and the note sounding at the change
            assert jack_client.wait_for(lambda got: len(note_ons(got, alone)) >= 8, timeout_s=20), rtgen.text()
            status = rtgen.status(after=time.perf_counter())
            p90, worst = status["send_p90_ms"], status["send_max_ms"]
            print(f"\n{network} alone: send p90 {p90:.2f} ms, max {worst:.2f} ms (all sends)")
            assert heard_on_time(status["send_p90_ms"], status["send_max_ms"]), (status, rtgen.text()[-3000:])


SOLO = ("--mode", "solo", "--tempo", "150")


@contextlib.contextmanager
def plays_solo_on_time(jack_client, rtgen, timeout_s: float):
    """``rtgen`` plays 8 notes within ``timeout_s``, its sends on time as a listener hears them; then the body runs
    (more steps of the same daemon); at the end the daemon stops with none of its notes left hanging."""
    try:
        jack_client.listen_to("rtgen out")
        assert jack_client.wait_for(lambda got: len(note_ons(got)) >= 8, timeout_s=timeout_s), rtgen.text()
        status = rtgen.status(after=time.perf_counter())
        print(f"\nfirst 8 notes: send p90 {status['send_p90_ms']:.2f} ms, max {status['send_max_ms']:.2f} ms")
        assert heard_on_time(status["send_p90_ms"], status["send_max_ms"]), (status, rtgen.text()[-3000:])
        yield
    finally:
        assert rtgen.terminate() == 0, rtgen.text()
    assert jack_client.wait_for(lambda got: unpaired_notes(got) == {}, timeout_s=2), unpaired_notes(
        jack_client.received
    )


@pytest.fixture(scope="module")
def other_kinds(tmp_path_factory):
    """Tiny checkpoints of the other token kinds, trained on twelve MIDI tunes: chords, time steps, a phrase VAE."""
    from test_corpus import tune

    from rtgen.config import from_dict
    from rtgen.train.config import TrainConfig, with_architecture
    from rtgen.train.loop import train

    root = tmp_path_factory.mktemp("kinds")
    (root / "tunes").mkdir()
    for i in range(12):
        tune(root / "tunes" / f"t{i:02}.mid", shift=i)
    common = {"corpus": {"source": str(root / "tunes")}, "steps_per_epoch": 5, "epochs": 1, "batch_size": 8}
    common |= {"transpose": False, "valid_fraction": 0.25, "threads": 1, "device": "cpu"}
    runs = {
        "kind-chord": ("lstm-256-512-256", {"net": {"hidden_sizes": [16, 16, 16], "dense_sizes": [8]}}),
        "kind-timestep": (None, {"encoding": "timestep", "net": {"embedding_dim": 8, "hidden_sizes": [16]}}),
        "kind-vae": ("vae", {"vae": {"hidden_sizes": [32, 16], "latent_dim": 4}}),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RTGEN_CACHE_DIR", str(root / "cache"))
        for name, (arch, settings) in runs.items():
            table = {**common, **settings, "genre": name, "out_dir": str(root / "models" / name)}
            train(from_dict(TrainConfig, with_architecture(table, arch), name), progress=False)
    return root / "models"


@pytest.mark.parametrize("name", ["kind-chord", "kind-timestep", "kind-vae"])
def test_chord_time_step_and_vae_models_play_live(name, other_kinds, jack_server, jack_client, tmp_path, monkeypatch):
    monkeypatch.setenv("RTGEN_MODELS", str(other_kinds))
    rtgen = Rtgen(tmp_path, "--mode", "solo", "--tempo", "150", "--genres", f"{name}=1")
    try:
        jack_client.listen_to("rtgen out")
        assert jack_client.wait_for(lambda got: len(note_ons(got)) >= 8, timeout_s=15), rtgen.text()
    finally:
        assert rtgen.terminate() == 0, rtgen.text()
    assert jack_client.wait_for(lambda got: unpaired_notes(got) == {}, timeout_s=2), unpaired_notes(
        jack_client.received
    )
