"""The synth ``--synth`` starts: fluidsynth with a General MIDI soundfont, so rtgen is heard with no DAW.

``rtgen run --synth`` starts fluidsynth in the guard process (``rtgen.cli.run_cmd``)
on the daemon's MIDI system, JACK, and connects each ``rtgen out`` the daemon
opens to fluidsynth's MIDI input; its audio goes to the sound card (JACK's
playback ports) or, with ``--synth out.wav``, to a WAV file through
fluidsynth's file driver, paced in real time, for machines without one.
``render`` and ``play`` turn a finished .mid into sound offline
(``rtgen generate --wav``, ``rtgen demo --play``).

fluidsynth runs as a child whose standard input is a pipe held by rtgen:
``stop`` asks it to quit (the WAV's header is written then), and if rtgen
dies without a word, by SIGKILL or a crash, the pipe closes and fluidsynth's
shell reads end-of-file and exits. Every way out leaves no synth behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rtgen.daemon.instrument import check_programs
from rtgen.errors import RtgenError

INSTALL_FLUIDSYNTH = (
    "fluidsynth is not installed; install it with `apt-get install fluidsynth timgm6mb-soundfont` (Debian, Ubuntu), "
    "`brew install fluid-synth` (macOS) or from https://www.fluidsynth.org (Windows)"
)
PREFERRED = ("default-GM.sf2", "default.sf2", "FluidR3_GM.sf2", "TimGM6mb.sf2")  # first found wins, then any .sf2
RATE_HZ = 44100  # the WAV's sample rate (JACK audio takes the server's)
POLL_S = 0.1  # how often the link looks for a new 'rtgen out' to connect


@dataclass(frozen=True)
class SynthConfig:
    """The ``[synth]`` table of the run config; ``--synth [SF2 | out.wav]`` turns it on for one run."""

    enabled: bool = False  # start fluidsynth with every run (not only when --synth is given)
    soundfont: str | None = None  # a .sf2 path; None: the first found in soundfont_dirs()
    wav: str | None = None  # render the live output to this WAV instead of the sound card
    gain: float = 0.5  # fluidsynth's master gain, 0-10 (its own default 0.2 is quiet for one melody line)
    programs: dict[str, int] = field(default_factory=dict)  # genre -> GM program 0-127, over instrument.GM_PROGRAMS
    log_midi: bool = False  # fluidsynth writes every MIDI event it receives to its log (state_dir()/synth.log)

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 10:
            raise RtgenError(f"synth gain {self.gain} outside 0-10")
        check_programs(self.programs)
        if self.wav is not None and not self.wav.lower().endswith(".wav"):
            raise RtgenError(f"synth wav {self.wav!r} must end in .wav")


def soundfont_dirs() -> list[Path]:
    """Where soundfonts are installed: Debian/Ubuntu, other Linux, Homebrew, the user's folder, Windows."""
    home = Path.home()
    dirs = [
        Path("/usr/share/sounds/sf2"),  # Debian: fluid-soundfont-gm, timgm6mb-soundfont
        Path("/usr/share/soundfonts"),  # Fedora, Arch
        Path("/opt/homebrew/share/soundfonts"),  # Homebrew on Apple silicon
        Path("/usr/local/share/soundfonts"),  # Homebrew on Intel, hand installs
        home / ".local/share/soundfonts",
        home / "Library/Audio/Sounds/Banks",  # macOS
    ]
    if sys.platform == "win32":
        drive = os.environ.get("SYSTEMDRIVE", "C:")
        dirs += [Path(drive + "\\soundfonts"), home / "soundfonts"]
        dirs += [Path(os.environ[v]) / "fluidsynth" for v in ("ProgramFiles", "LOCALAPPDATA") if v in os.environ]
    return dirs


def find_soundfont(given: str | None = None, dirs: Sequence[Path] | None = None) -> Path:
    """``given`` when it exists, else the first of ``PREFERRED`` in ``dirs``, else any .sf2 there; one-line errors."""
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise RtgenError(f"soundfont {given}: no such file")
        return path
    dirs = soundfont_dirs() if dirs is None else list(dirs)
    for name in PREFERRED:
        for folder in dirs:
            if (folder / name).is_file():
                return folder / name
    for folder in dirs:
        found = sorted(folder.glob("*.sf2")) if folder.is_dir() else []
        if found:
            return found[0]
    looked = ", ".join(str(folder) for folder in dirs)
    raise RtgenError(
        f"no soundfont (.sf2) in {looked}; install one (`apt-get install timgm6mb-soundfont`) or pass --synth FILE.sf2"
    )


def fluidsynth_path() -> str:
    found = shutil.which("fluidsynth")
    if found is None:
        raise RtgenError(INSTALL_FLUIDSYNTH)
    return found


def live_command(config: SynthConfig, soundfont: Path, client: str, fluidsynth: str = "fluidsynth") -> list[str]:
    """fluidsynth on JACK MIDI as ``client``, its audio to JACK's playback ports or to ``config.wav``."""
    command = [fluidsynth, "-q", "-g", f"{config.gain:g}", "-m", "jack", "-o", f"midi.jack.id={client}"]
    if config.wav:
        command += ["-a", "file", "-o", f"audio.file.name={config.wav}", "-r", str(RATE_HZ)]
    else:
        command += ["-a", "jack", "-o", f"audio.jack.id={client}", "-j"]
    if config.log_midi:
        command.append("-d")
    return [*command, str(soundfont)]


class Synth:
    """fluidsynth as this process's child on JACK; ``start``, ``link`` the daemon's outputs to it, ``stop``."""

    def __init__(self, config: SynthConfig, soundfont: Path, log_path: Path) -> None:
        self.config = config
        self.soundfont = soundfont
        self.log_path = log_path
        self.client = f"rtgen-synth-{os.getpid()}"
        self.proc: subprocess.Popen | None = None
        self.input_port: str | None = None  # fluidsynth's MIDI input, as the JACK graph names it
        self.linked: list[str] = []  # the 'rtgen out' ports connected to it
        self._others: set[str] = set()  # 'rtgen out' ports there before fluidsynth: another rtgen's
        self._done = threading.Event()
        self._link: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout_s: float = 20.0) -> Synth:
        """Start fluidsynth and wait for its MIDI input on the JACK graph; a one-line error if it does not come."""
        from rtgen.midi.graph import JackGraph

        command = live_command(self.config, self.soundfont, self.client, fluidsynth_path())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
        graph = JackGraph.open("rtgen-synth-probe")
        if graph is None:
            self.stop()
            raise RtgenError("--synth plays over JACK and no JACK server answers")
        with graph:
            self._others = set(graph.midi_outputs(":rtgen out$"))
            deadline = time.monotonic() + timeout_s
            while not (ports := graph.midi_inputs(f"^{self.client}:")):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RtgenError(f"fluidsynth did not start: {self.log_tail()}")
                time.sleep(0.05)
        self.input_port = ports[0]
        return self

    def link(self) -> None:
        """Connect every 'rtgen out' that appears from now on to fluidsynth, until ``stop`` (a thread)."""
        self._link = threading.Thread(target=self._follow, name="rtgen-synth-link", daemon=True)
        self._link.start()

    def _follow(self) -> None:
        from rtgen.midi.graph import JackGraph

        graph = JackGraph.open("rtgen-synth-link")
        if graph is None:
            return
        with graph:
            while not self._done.wait(POLL_S):
                for port in set(graph.midi_outputs(":rtgen out$")) - self._others - set(self.linked):
                    if graph.connect(port, self.input_port):
                        self.linked.append(port)

    def log_tail(self, lines: int = 3) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(line for line in text[-lines:] if line.strip()) or "no output"

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """Ask fluidsynth to quit (the WAV is finished then), else end it; its exit code."""
        self._done.set()
        if self._link is not None:
            self._link.join(timeout=2.0)
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):  # it exited between the poll and the write
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _with_program(midi: Path, program: int, folder: str) -> Path:
    """A copy of ``midi`` whose every track starts with ``program`` on the channels it uses."""
    import mido

    source = mido.MidiFile(midi)
    for track in source.tracks:
        channels = sorted({m.channel for m in track if hasattr(m, "channel")})
        for channel in reversed(channels):
            track.insert(0, mido.Message("program_change", channel=channel, program=program, time=0))
    copy = Path(folder) / "with-program.mid"
    source.save(copy)
    return copy


def _run_fluidsynth(arguments: list[str], what: str) -> None:
    result = subprocess.run([fluidsynth_path(), *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise RtgenError(f"fluidsynth could not {what}: {lines[-1] if lines else f'exit code {result.returncode}'}")


def render(midi: Path, wav: Path, soundfont: Path, program: int, gain: float = 0.5) -> Path:
    """``midi`` rendered to ``wav`` offline, as fast as the CPU goes (``fluidsynth -ni -F``)."""
    with tempfile.TemporaryDirectory(prefix="rtgen-render-") as folder:
        copy = _with_program(midi, program, folder)
        _run_fluidsynth(
            ["-ni", "-q", "-g", f"{gain:g}", "-r", str(RATE_HZ), "-F", str(wav), str(soundfont), str(copy)],
            f"render {wav}",
        )
    return wav


def play(midi: Path, soundfont: Path, program: int, gain: float = 0.5) -> None:
    """Play ``midi`` on the sound card and return when it has ended.

    Through JACK's playback ports where a JACK server runs (the MIDI system rtgen plays on), else through
    fluidsynth's default audio driver (PulseAudio, ALSA, CoreAudio, DirectSound).
    """
    from rtgen.midi.backends import jack_server_running

    driver = ["-a", "jack", "-j"] if jack_server_running() else []
    with tempfile.TemporaryDirectory(prefix="rtgen-play-") as folder:
        copy = _with_program(midi, program, folder)
        arguments = ["-ni", "-q", *driver, "-g", f"{gain:g}", str(soundfont), str(copy)]
        _run_fluidsynth(arguments, "play on the sound card (try --play out.wav)")
