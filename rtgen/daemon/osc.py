"""The daemon's control protocol: OSC over UDP (python-osc), the address table in docs/osc.md.

One thread owns the socket: it reads packets, checks each message's address,
types and range here, and turns a good one into a command for the engine
thread (``rtgen.daemon.commands``); a bad one gets ``/rtgen/error "why"``
back. Between packets it sends the status stream to subscribers: the
snapshot as JSON at most ``status_hz`` times a second, log lines and errors as
they happen. The TUI speaks exactly this protocol, so anything it can do,
TouchOSC, Max, Pd or SuperCollider can.

Abuse never reaches the music: a packet that does not parse is counted in
``malformed``, one beyond ``max_packets_per_s`` is dropped unparsed and
counted in ``flood_dropped``, and a command is dropped (``queue_dropped``) while
the engine thread has ``max_backlog`` commands waiting. OSC has no
authentication, so the server binds loopback unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pythonosc.osc_packet import OscPacket, ParseError

from rtgen.controls import WEIGHT_PREFIX, ControlError, check, spec
from rtgen.daemon.commands import Learn, LoadPreset, LoadSeed, SavePreset, SetControls, Transport
from rtgen.daemon.protocol import DEFAULT_PORT, PREFIX, message
from rtgen.daemon.status import to_json
from rtgen.errors import RtgenError
from rtgen.live.player import Allowance

SUBSCRIPTION_S = 10.0  # a subscriber not renewed for this long is dropped (clients renew every 2 s)
MAX_SUBSCRIBERS = 32
MAX_DATAGRAM = 65000


class OscError(RtgenError):
    """A message the daemon cannot take; the text names the address and what was wrong."""


@dataclass(frozen=True)
class OscConfig:
    """Where the server listens and how much it takes."""

    host: str = "127.0.0.1"  # loopback only unless `allow_remote`
    port: int = DEFAULT_PORT  # 1-65535; 0 picks a free port (tests)
    allow_remote: bool = False  # a non-loopback host needs this: OSC has no authentication
    status_hz: float = 20.0  # status messages a second to each subscriber, 1-20
    max_packets_per_s: float = 2000.0  # packets parsed a second; beyond, dropped unparsed
    max_backlog: int = 1024  # commands waiting for the engine thread before new ones are dropped

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise RtgenError(f"OSC port {self.port} must be 0-65535")
        if not 1 <= self.status_hz <= 20:
            raise RtgenError(f"status_hz {self.status_hz} must be 1-20")
        if not is_loopback(self.host) and not self.allow_remote:
            raise RtgenError(
                f"OSC host {self.host} is reachable from the network and OSC has no authentication; "
                "pass --osc-allow-remote to bind it anyway"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OscServer:
    """The control endpoint of one daemon (see the module docstring); ``start``/``stop``."""

    def __init__(self, daemon, config: OscConfig, now: Callable[[], float] = time.monotonic) -> None:
        self.daemon = daemon  # snapshot(), events_after(), genres, submit(), player.commands
        self.config = config
        self.now = now
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            self.sock.bind((config.host, config.port))
        except OSError as error:
            self.sock.close()
            raise RtgenError(
                f"cannot listen for OSC on {config.host}:{config.port}: {error.strerror} "
                "(is another rtgen running? `rtgen attach` reaches it; or pick another port with --osc-port)"
            ) from None
        self.sock.settimeout(0.01)
        self.port = self.sock.getsockname()[1]
        self.subscribers: dict[tuple[str, int], float] = {}  # address -> expiry (monotonic s)
        self.counts = {"received": 0, "malformed": 0, "refused": 0, "flood_dropped": 0, "queue_dropped": 0}
        self._serial = -1  # the last daemon event sent
        self._next_status = 0.0
        self._budget = Allowance(config.max_packets_per_s, burst=config.max_packets_per_s / 10)  # a tenth of a second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtgen-osc", daemon=True)
        self._handlers: dict[str, Callable[[tuple[str, int], list], None]] = {
            "play": lambda client, args: self._transport("play", args),
            "stop": lambda client, args: self._transport("stop", args),
            "panic": lambda client, args: self._transport("panic", args),
            "weights": self._weights,
            "controls": self._controls,
            "learn": self._learn,
            "preset/load": lambda client, args: self._submit(LoadPreset(_string("preset/load", args))),
            "preset/save": lambda client, args: self._submit(SavePreset(_string("preset/save", args))),
            "seed/load": lambda client, args: self._submit(LoadSeed(_string("seed/load", args))),
            "presets": self._presets,
            "preset/list": self._preset_list,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "status": lambda client, args: self._send_status([client]),
        }

    # ---- lifecycle ----

    def start(self) -> OscServer:
        self._serial = max((e[0] for e in self.daemon.events_after(-1)), default=-1) - 20  # new UIs see the last few
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Flush pending log lines and errors, tell subscribers the daemon is gone, close the socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._send_events()
        self._broadcast(message(PREFIX + "bye", reason))
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(MAX_DATAGRAM)
            except OSError:  # the timeout, or an ICMP error left by a send to a vanished subscriber
                data = None
            if data is not None:
                self._packet(data, client)
            self._publish()

    # ---- input ----

    def _packet(self, data: bytes, client: tuple[str, int]) -> None:
        self.counts["received"] += 1
        if not self._within_budget():
            self.counts["flood_dropped"] += 1
            return
        try:
            messages = [m.message for m in OscPacket(data).messages]
        except (ParseError, ValueError, IndexError, TypeError, OverflowError, struct.error):
            self.counts["malformed"] += 1  # python-osc's parser on hostile bytes: counted, never raised
            return
        for msg in messages:
            try:
                self.handle(msg.address, list(msg.params), client)
            except RtgenError as error:
                self.counts["refused"] += 1
                self._send(client, message(PREFIX + "error", str(error)))

    def _within_budget(self) -> bool:
        self._budget.refill(self.now())
        return self._budget.take_one()

    def handle(self, address: str, args: list, client: tuple[str, int]) -> None:
        """One message: a command queued, a reply sent, or ``OscError`` naming what was wrong."""
        if not isinstance(address, str) or not address.startswith(PREFIX):
            raise OscError(f"unknown address {address!r}; rtgen's addresses start with {PREFIX}")
        name = address[len(PREFIX) :]
        if name in self._handlers:
            self._handlers[name](client, args)
        elif name.startswith("weight/"):
            self._weight(name[len("weight/") :], args)
        else:
            self._control(name, args)

    def _submit(self, command) -> None:
        if self.daemon.player.commands.qsize() >= self.config.max_backlog:
            self.counts["queue_dropped"] += 1
            return
        self.daemon.submit(command)

    def _transport(self, action: str, args: list) -> None:
        if args and not (len(args) == 1 and args[0] in (1, 1.0, True)):
            raise OscError(f"{PREFIX}{action} takes no argument (or a button's 1), got {args!r}")
        if not args or args[0]:
            self._submit(Transport(action))

    def _control(self, name: str, args: list) -> None:
        self._submit(SetControls.one(name, self.checked(name, _one(name, args))))

    def checked(self, name: str, value: object) -> object:
        """``value`` for the control ``name`` (a registry name), checked by ``rtgen.controls``, or ``OscError``.

        The registry's hard range is checked here; a bound that depends on the loaded
        model (``top_k``'s vocabulary size) is checked by the engine, which reports a refusal.
        """
        if name.startswith(WEIGHT_PREFIX) and name[len(WEIGHT_PREFIX) :] not in self.daemon.genres:
            genre = name[len(WEIGHT_PREFIX) :]
            raise OscError(f"no genre {genre!r} loaded ({', '.join(self.daemon.genres)})")
        try:
            spec(name)
        except ControlError:
            raise OscError(f"unknown address {PREFIX}{name}; see docs/osc.md for the address table") from None
        if isinstance(value, float) and math.isfinite(value):
            # OSC floats are 32-bit: 0.7 arrives as 0.699999988; seven significant digits give back what was meant
            value = float(f"{value:.7g}")
        try:
            return check(name, value)
        except ControlError as error:
            raise OscError(f"{PREFIX}{error}") from None

    def _weight(self, genre: str, args: list) -> None:
        name = WEIGHT_PREFIX + genre
        self._submit(SetControls.one(name, self.checked(name, _one(f"weight/{genre}", args))))

    def _weights(self, client, args: list) -> None:
        """``/rtgen/weights genre weight genre weight ...``: the weights together."""
        self._pairs("weights", args, prefix="weights.")

    def _controls(self, client, args: list) -> None:
        """``/rtgen/controls name value name value ...``: any controls together (one check, one change)."""
        self._pairs("controls", args)

    def _pairs(self, address: str, args: list, prefix: str = "") -> None:
        if not args or len(args) % 2:
            raise OscError(f"{PREFIX}{address} takes name, value pairs, e.g. folk 5 fiddle 2; got {len(args)} values")
        checked = []
        for name, value in zip(args[::2], args[1::2], strict=True):
            if not isinstance(name, str):
                raise OscError(f"{PREFIX}{address}: a name must be a string, got {name!r}")
            checked.append((prefix + name, self.checked(prefix + name, value)))
        self._submit(SetControls(tuple(checked)))

    def _learn(self, client, args: list) -> None:
        control = _one("learn", args) if args else ""
        if not isinstance(control, str):
            raise OscError(f'{PREFIX}learn takes a control name, or "" to cancel; got {control!r}')
        control = control.strip()
        if control:
            try:
                spec(control)
            except ControlError as error:
                raise OscError(f"{PREFIX}learn: {error}") from None
        self._submit(Learn(control or None))

    def _presets(self, client, args: list) -> None:
        from rtgen.daemon.presets import list_presets

        self._send(client, message(PREFIX + "presets", *list_presets()))

    def _preset_list(self, client, args: list) -> None:
        """Reply ``/rtgen/preset/list name description ...``; a malformed file's description is its error."""
        from rtgen.daemon.presets import describe_presets

        pairs = [(p.name, p.description if p.error is None else f"malformed: {p.error}") for p in describe_presets()]
        self._send(client, message(PREFIX + "preset/list", *[item for pair in pairs for item in pair]))

    def _subscribe(self, client, args: list) -> None:
        target = _target(client, args)
        if target not in self.subscribers and len(self.subscribers) >= MAX_SUBSCRIBERS:
            raise OscError(f"{MAX_SUBSCRIBERS} subscribers already; unsubscribe one first")
        fresh = target not in self.subscribers
        self.subscribers[target] = self.now() + SUBSCRIPTION_S
        if fresh:
            self._send_status([target])

    def _unsubscribe(self, client, args: list) -> None:
        self.subscribers.pop(_target(client, args), None)

    # ---- output ----

    def _publish(self) -> None:
        now = self.now()
        self._send_events()
        if now < self._next_status:
            return
        self._next_status = now + 1.0 / self.config.status_hz
        self.subscribers = {target: expiry for target, expiry in self.subscribers.items() if expiry > now}
        if self.subscribers:
            self._send_status(list(self.subscribers))

    def _send_events(self) -> None:
        for serial, kind, line in self.daemon.events_after(self._serial):
            self._serial = serial
            self._broadcast(message(PREFIX + kind, line))

    def _send_status(self, targets: list[tuple[str, int]]) -> None:
        status = to_json(self.daemon.snapshot())
        status["osc"] = dict(self.counts)
        packet = message(PREFIX + "status", json.dumps(status, separators=(",", ":")))
        for target in targets:
            self._send(target, packet)

    def _broadcast(self, packet: bytes) -> None:
        for target in list(self.subscribers):
            self._send(target, packet)

    def _send(self, target: tuple[str, int], packet: bytes) -> None:
        try:
            self.sock.sendto(packet, target)
        except OSError:
            self.subscribers.pop(target, None)


def _one(name: str, args: list) -> object:
    if len(args) != 1:
        raise OscError(f"{PREFIX}{name} takes one value, got {len(args)}")
    return args[0]


def _string(name: str, args: list) -> str:
    value = _one(name, args)
    if not isinstance(value, str) or not value.strip():
        raise OscError(f"{PREFIX}{name} takes a name (a string), got {value!r}")
    return value.strip()


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 65535:
        raise OscError(f"{PREFIX}subscribe port {value!r} outside 1-65535")
    return round(value)


def _target(client: tuple[str, int], args: list) -> tuple[str, int]:
    """Where a subscriber wants the stream: the sender's address, or its host at the port given."""
    if not args:
        return client
    return client[0], _port(_one("subscribe", args))
