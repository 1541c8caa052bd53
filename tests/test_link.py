"""Ableton Link: rtgen's clock as a peer of a Link session (two peers on this machine, over loopback).

The in-process tests join two ``LinkClock`` peers; the end-to-end test runs
`rtgen run --headless --clock link` against a peer in this process and
stamps rtgen's notes at a JACK client. A machine whose network cannot carry
Link's peer discovery (no multicast) skips them, saying so.
"""

from __future__ import annotations

import time

import pytest
from jack_server import AUDIBLE_MS, JackClient, wait_until
from rtgen_process import Rtgen
from test_e2e_jack import note_ons

from rtgen.daemon.client import DaemonClient
from rtgen.live.timing import percentile

link = pytest.importorskip("rtgen.live.link")
STEPS_PER_BEAT = 12


def peers() -> tuple:
    a, b = link.LinkClock(120.0), link.LinkClock(120.0)
    if not wait_until(lambda: a.peers and b.peers, timeout_s=5.0):
        a.close()
        b.close()
        pytest.skip("two Link peers on this machine did not find each other (no multicast on loopback?)")
    return a, b


def test_two_peers_share_tempo_and_beat():
    a, b = peers()
    try:
        a.set_tempo(133.0)
        assert wait_until(lambda: abs(b.tempo_bpm - 133.0) < 0.01, timeout_s=2.0), b.tempo_bpm
        now = time.perf_counter()
        assert abs(a.beat_at(now) - b.beat_at(now)) * 60_000 / 133.0 < AUDIBLE_MS  # one beat for a listener
        assert a.time_at(a.beat_at(now)) == pytest.approx(now, abs=1e-9)
        assert int(a.beat_at(now)) // 4 == int(b.beat_at(now)) // 4  # the same bar: one quantum
    finally:
        a.close()
        b.close()


def grid_errors_ms(onsets: list[float], peer) -> list[float]:
    """Each onset's distance to the nearest step (1/12 beat) of ``peer``'s beat grid, in ms."""
    errors = []
    for t in onsets:
        beat = peer.beat_at(t)
        step = round(beat * STEPS_PER_BEAT) / STEPS_PER_BEAT
        errors.append(abs(beat - step) * 60_000 / peer.tempo_bpm)
    return sorted(errors)


@pytest.mark.jack
def test_rtgen_follows_a_peers_tempo_on_its_beat_grid_and_leads_it_too(jack_server, tmp_path):
    peer = link.LinkClock(120.0)
    rtgen = Rtgen(tmp_path, "--mode", "solo", "--clock", "link", "--tempo", "120", "--preset", "fiddle-reel")
    try:
        if not wait_until(lambda: peer.peers, timeout_s=5.0):
            pytest.skip("rtgen and this test's Link peer did not find each other (no multicast on loopback?)")
        with JackClient("link-synth") as synth:
            synth.listen_to("rtgen out")
            peer.set_tempo(140.0)
            changed = time.perf_counter()
            assert wait_until(lambda: rtgen.status(after=time.perf_counter())["tempo_bpm"] > 139.9, timeout_s=3)
            followed_s = time.perf_counter() - changed
            synth.clear()
            assert synth.wait_for(lambda got: len(note_ons(got)) >= 40, timeout_s=30)  # some bars on its grid
            onsets = [t for t, _ in note_ons(synth.received)]
            errors = grid_errors_ms(onsets, peer)
            p50, p90 = percentile(errors, 0.5), percentile(errors, 0.9)
            print(f"link: tempo followed in {followed_s * 1000:.0f} ms (a beat is 429 ms); {len(onsets)} notes, "
                  f"distance to the peer's grid p50 {p50:.2f} ms, p90 {p90:.2f} ms, "
                  f"max {errors[-1]:.2f} ms")  # fmt: skip
            # On the peer's grid: notes off its phase would lie anywhere up to half a step (18 ms) away, 9 ms in
            # the median. The tail is the machine's scheduling noise, not the phase (beside two CPU spinners one
            # note in ten came 10-18 ms late, the median stayed under 1 ms): the benchmarks measure that.
            assert followed_s < 60 / 140 and p50 <= AUDIBLE_MS / 2
            client = DaemonClient(rtgen.osc_port).connect(timeout_s=10)
            client.set_tempo(100.0)
            assert wait_until(lambda: abs(peer.tempo_bpm - 100.0) < 0.01, timeout_s=3), peer.tempo_bpm
            client.close()
    finally:
        assert rtgen.terminate() == 0, rtgen.text()
        peer.close()
