"""The OSC control protocol: each address's checks, hostile packets, the status codec, client and server over UDP."""

from __future__ import annotations

import dataclasses
import queue
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jack_server import wait_until

from rtgen.daemon.client import DaemonClient
from rtgen.daemon.commands import Learn, LoadPreset, LoadSeed, SavePreset, SetControls, Transport
from rtgen.daemon.osc import OscConfig, OscError, OscServer, message
from rtgen.daemon.status import Snapshot, from_json, to_json
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.live.roll import RollNote

GENRES = ("folk", "fiddle")
CLIENT = ("127.0.0.1", 40000)


class FakeDaemon:
    """What the server reads of a daemon: genres, a snapshot, events, and the engine thread's queue."""

    def __init__(self) -> None:
        self.genres = GENRES
        self.commands: list[object] = []
        self.player = type("Player", (), {"commands": queue.SimpleQueue()})()
        self.events: list[tuple[int, str, str]] = []
        self.snap = Snapshot(
            genres=GENRES,
            controls=Controls(weights={"folk": 1.0, "fiddle": 1.0}),
            mode="solo",
            playing=True,
            tempo_bpm=120.0,
            clock_source="internal",
            current_beat=3.5,
            roll=(RollNote(1.0, 2.0, 60, "performer"), RollNote(2.0, None, 64, "rtgen")),
        )

    def submit(self, command) -> None:
        self.commands.append(command)

    def snapshot(self) -> Snapshot:
        return self.snap

    def events_after(self, serial: int) -> list[tuple[int, str, str]]:
        return [event for event in self.events if event[0] > serial]


@pytest.fixture
def server():
    daemon = FakeDaemon()
    osc = OscServer(daemon, OscConfig(port=0))
    yield osc
    osc.sock.close()


def test_each_control_address_becomes_one_checked_command(server):
    server.handle("/rtgen/temperature", [0.8], CLIENT)
    server.handle("/rtgen/weight/fiddle", [7], CLIENT)
    server.handle("/rtgen/top_k", [12.4], CLIENT)
    server.handle("/rtgen/scale_lock", [True], CLIENT)
    server.handle("/rtgen/mode", ["duet"], CLIENT)
    server.handle("/rtgen/controls", ["pitch_min", 60, "pitch_max", 72], CLIENT)
    server.handle("/rtgen/weights", ["folk", 2, "fiddle", 0.5], CLIENT)
    assert server.daemon.commands == [
        SetControls.one("temperature", 0.8),
        SetControls.one("weights.fiddle", 7.0),
        SetControls.one("top_k", 12),
        SetControls.one("scale_lock", True),
        SetControls.one("mode", "duet"),
        SetControls((("pitch_min", 60), ("pitch_max", 72))),
        SetControls((("weights.folk", 2.0), ("weights.fiddle", 0.5))),
    ]


@pytest.mark.parametrize(
    ("control", "value"),
    [("density", 2.5), ("register", 72), ("register_width", 6), ("rhythm_temperature", 0.5),
     ("pitch_temperature", 1.5), ("motif", 0.8)],
)  # fmt: skip
def test_every_steering_control_has_an_address(server, control, value):
    server.handle(f"/rtgen/{control}", [value], CLIENT)
    with pytest.raises(OscError, match=f"/rtgen/{control} -5.0 outside"):
        server.handle(f"/rtgen/{control}", [-5.0], CLIENT)
    assert server.daemon.commands == [SetControls.one(control, float(value))]


def test_a_32_bit_float_at_the_end_of_a_range_is_taken_as_meant(server):
    sent = struct.unpack("f", struct.pack("f", 0.01))[0]  # 0.009999999776, below the hard range's 0.01
    server.handle("/rtgen/temperature", [sent], CLIENT)
    assert server.daemon.commands == [SetControls.one("temperature", 0.01)]


def test_follow_and_a_seed_file_have_addresses(server):
    server.handle("/rtgen/follow", [1], CLIENT)
    server.handle("/rtgen/seed/load", ["takes/last.mid"], CLIENT)
    assert server.daemon.commands == [SetControls.one("follow", True), LoadSeed("takes/last.mid")]


def test_transport_presets_and_learn(server):
    for address, args in (
        ("/rtgen/play", []),
        ("/rtgen/stop", [1]),
        ("/rtgen/panic", []),
        ("/rtgen/preset/load", ["fiddle-reel"]),
        ("/rtgen/preset/save", [" gig "]),
        ("/rtgen/learn", ["top_p"]),
        ("/rtgen/learn", [""]),
    ):
        server.handle(address, args, CLIENT)
    assert server.daemon.commands == [
        Transport("play"),
        Transport("stop"),
        Transport("panic"),
        LoadPreset("fiddle-reel"),
        SavePreset("gig"),
        Learn("top_p"),
        Learn(None),
    ]


@pytest.mark.parametrize(
    ("address", "args", "why"),
    [
        ("/other/thing", [1], "unknown address '/other/thing'"),
        ("/rtgen/volume", [1], "unknown address /rtgen/volume"),
        ("/rtgen/temperature", ["hot"], "takes a number, got 'hot'"),
        ("/rtgen/temperature", [], "takes one value, got 0"),
        ("/rtgen/temperature", [50.0], "50.0 outside 0.01-10"),
        ("/rtgen/temperature", [float("nan")], "nan outside 0.01-10"),
        ("/rtgen/top_k", [float("inf")], "inf outside 0 and up"),
        ("/rtgen/weight/jazz", [1.0], "no genre 'jazz' loaded (folk, fiddle)"),
        ("/rtgen/weight/folk", [-1.0], "outside 0-100"),
        ("/rtgen/mode", ["karaoke"], "'karaoke' is not one of"),
        ("/rtgen/scale_lock", [2], "takes 0/1"),
        ("/rtgen/weights", ["folk"], "takes name, value pairs"),
        ("/rtgen/controls", [3, 4], "a name must be a string"),
        ("/rtgen/learn", ["volume"], "unknown control 'volume'"),
        ("/rtgen/preset/load", [5], "takes a name"),
        ("/rtgen/play", ["now"], "takes no argument"),
        ("/rtgen/subscribe", [70000], "outside 1-65535"),
    ],
)
def test_a_bad_message_is_refused_naming_what_is_wrong(server, address, args, why):
    with pytest.raises(OscError, match=why.replace("(", r"\(").replace(")", r"\)")):
        server.handle(address, args, CLIENT)
    assert server.daemon.commands == []


def test_a_backlog_drops_commands_and_counts_them(server):
    for _ in range(server.config.max_backlog):
        server.daemon.player.commands.put(object())
    server.handle("/rtgen/panic", [], CLIENT)
    assert server.daemon.commands == [] and server.counts["queue_dropped"] == 1


def test_a_flood_past_the_budget_is_dropped_unparsed():
    daemon, now = FakeDaemon(), [0.0]
    server = OscServer(daemon, OscConfig(port=0), now=lambda: now[0])
    packet = message("/rtgen/temperature", 0.5)
    for _ in range(1000):  # all at one instant: the bucket holds a tenth of a second's worth
        server._packet(packet, CLIENT)
    now[0] += 0.05  # half a tenth later: half the bucket again
    for _ in range(1000):
        server._packet(packet, CLIENT)
    server.sock.close()
    assert server.counts["flood_dropped"] == 2000 - 300
    assert len(daemon.commands) == 300


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    daemon = FakeDaemon()
    osc = OscServer(daemon, OscConfig(port=0))
    try:
        osc._packet(data, CLIENT)
        assert osc.counts["received"] == 1
    finally:
        osc.sock.close()


osc_args = st.lists(
    st.one_of(
        st.integers(-(2**31), 2**31 - 1),
        st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.text(st.characters(exclude_characters="\x00"), max_size=12),  # an OSC string ends at its first NUL
        st.booleans(),
    ),
    max_size=4,
)
addresses = st.one_of(
    st.sampled_from(
        [
            "/rtgen/temperature",
            "/rtgen/weight/folk",
            "/rtgen/weights",
            "/rtgen/controls",
            "/rtgen/mode",
            "/rtgen/key",
            "/rtgen/scale_lock",
            "/rtgen/learn",
            "/rtgen/subscribe",
            "/rtgen/play",
        ]
    ),
    st.text(min_size=1, max_size=20).map(lambda s: "/" + s.replace("\x00", "")),
)


@settings(max_examples=300, deadline=None)
@given(addresses, osc_args)
def test_well_formed_messages_with_any_values_are_taken_or_refused_never_raised(address, args):
    daemon = FakeDaemon()
    osc = OscServer(daemon, OscConfig(port=0))
    try:
        osc._packet(message(address, *args), CLIENT)
        assert osc.counts["refused"] + len(daemon.commands) + osc.counts["malformed"] <= 1 + len(daemon.commands)
        for command in daemon.commands:
            if isinstance(command, SetControls):
                for name, value in command.changes:
                    assert not (isinstance(value, float) and value != value), (name, value)  # no NaN gets through
    finally:
        osc.sock.close()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 3)),
            st.one_of(st.none(), st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 3))),
            st.integers(0, 127),
            st.sampled_from(["performer", "rtgen"]),
        ),
        max_size=50,
    ),
    st.lists(st.text(max_size=30), max_size=5),
)
def test_the_status_codec_round_trips(roll, log):
    snap = dataclasses.replace(
        FakeDaemon().snap, roll=tuple(RollNote(*note) for note in roll), log=tuple(log), learning="top_p"
    )
    assert from_json(to_json(snap)) == snap


def test_a_non_loopback_address_needs_an_explicit_flag():
    with pytest.raises(RtgenError, match="no authentication"):
        OscConfig(host="0.0.0.0")
    assert OscConfig(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    assert OscConfig(host="::1").host == "::1"


def test_client_and_server_over_udp():
    daemon = FakeDaemon()
    osc = OscServer(daemon, OscConfig(port=0)).start()
    client = DaemonClient(osc.port).connect(timeout_s=5)
    try:
        assert client.snapshot() == daemon.snap
        client.set_controls(weights={"folk": 3.0, "fiddle": 1.0}, temperature=0.7)
        client.set_tempo(99)
        client.learn(None)
        client.send("temperature", "hot")
        assert wait_until(lambda: len(daemon.commands) >= 3, timeout_s=5)
        assert daemon.commands == [
            SetControls((("weights.folk", 3.0), ("weights.fiddle", 1.0), ("temperature", 0.7))),
            SetControls.one("tempo_bpm", 99.0),
            Learn(None),
        ]
        assert dict(client.presets())["fiddle-reel"].startswith("Fast fiddle reel")  # name, description pairs
        daemon.events.append((0, "error", "the engine said no"))
        daemon.snap = dataclasses.replace(daemon.snap, tempo_bpm=99.0)
        assert client.wait_for(lambda snap: snap.tempo_bpm == 99.0)
        errors: list[str] = []
        assert wait_until(lambda: errors.extend(client.take_errors()) or len(errors) >= 2, timeout_s=5)
        assert "the engine said no" in errors
        assert any("/rtgen/temperature takes a number, got 'hot'" in e for e in errors)
        assert client.osc_counts["refused"] == 1
    finally:
        osc.stop("stopped")
        assert wait_until(lambda: client.gone == "stopped", timeout_s=5)
        client.close()


def test_connect_fails_clearly_when_no_daemon_listens():
    with pytest.raises(RtgenError, match="no rtgen daemon answers OSC at 127.0.0.1:9"):
        DaemonClient(9).connect(timeout_s=0.3)
