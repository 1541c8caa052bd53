"""The daemon's settings: one frozen dataclass, from a TOML file and/or `rtgen run` flags.

A file (``rtgen run --config daemon.toml``) is read strictly by
``rtgen.config``; flags given on the command line override it. Nested tables
``[listener]``, ``[player]``, ``[osc]`` and ``[synth]`` hold the listener's, the engine
thread's, the control protocol's and the synth's settings::

    preset = "folk-answer"
    clock = "external"
    [listener]
    phrase_gap_beats = 1.5
    [player]
    answer_start = "beat"
    [synth.programs]
    renaissance = 74
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rtgen.controls import WEIGHT_PREFIX, check
from rtgen.daemon.osc import OscConfig
from rtgen.daemon.synth import SynthConfig
from rtgen.errors import RtgenError
from rtgen.live.listener import ListenerConfig
from rtgen.live.player import PlayerConfig

DEFAULT_PRESET = "case-study-5-5-5"


@dataclass(frozen=True)
class DaemonConfig:
    """Ports, clock, models and recording for one run; every field has a working default."""

    backend: str = "auto"  # auto | jack | alsa | coremidi | windows
    in_port: str | None = None  # None: rtgen's virtual "rtgen in"; else a substring of an existing port's name
    out_port: str | None = None  # None: virtual "rtgen out"; a port name substring; or a path ending in .mid
    preset: str = DEFAULT_PRESET  # name in presets_dir() or a .toml path
    genres: dict[str, float] = field(default_factory=dict)  # genre -> weight; overrides the preset's weights
    mode: str | None = None  # call-and-response | duet | solo; None: the preset's
    tempo_bpm: float | None = None  # None: the preset's; ignored with an external clock
    clock: Literal["internal", "external", "link"] = "internal"  # external: MIDI clock on the input; link: Ableton Link
    send_clock: bool = False  # send MIDI clock (24 a beat) on the output, as master
    device: str = "auto"  # auto | cpu | cuda, where the models run
    record: bool = True  # write every run's take as a .mid
    record_dir: str | None = None  # None: rtgen.paths.recordings_dir()
    flush_interval_s: float = 3.0  # the take is rewritten this often, > 0
    cc_map: str | None = None  # None: config_dir()/cc_map.toml when present, else the built-in map
    seed: int | None = None  # sampler seed for a repeatable run; None: random
    realtime: bool = True  # ask for SCHED_FIFO for the output thread and nice -10 for the daemon, where permitted
    listener: ListenerConfig = field(default_factory=ListenerConfig)
    player: PlayerConfig = field(default_factory=PlayerConfig)
    osc: OscConfig = field(default_factory=OscConfig)  # the control protocol's endpoint
    synth: SynthConfig = field(default_factory=SynthConfig)  # fluidsynth started by the guard, and its GM programs

    def __post_init__(self) -> None:
        if self.clock not in ("internal", "external", "link"):
            raise RtgenError(f"clock {self.clock!r} is not one of internal, external, link")
        if self.mode is not None:
            check("mode", self.mode)
        if self.tempo_bpm is not None:
            check("tempo_bpm", self.tempo_bpm)
        if self.flush_interval_s <= 0:
            raise RtgenError(f"flush_interval_s {self.flush_interval_s} must be > 0")
        for genre, weight in self.genres.items():
            check(WEIGHT_PREFIX + genre, weight)

    @property
    def out_is_file(self) -> bool:
        return self.out_port is not None and self.out_port.lower().endswith((".mid", ".midi"))
