"""``rtgen play FILE.mid --out PORT``: a file played to a MIDI port by rtgen's own output scheduler.

The fusion paper's playback button, and a way to hear a take or a generated
piece on the synth the daemon plays: every channel message of every track,
at its time in the file's tempo map (``--tempo`` scales it to another tempo),
sent by the same sleep-then-spin output thread as the daemon's. Ctrl-C, or
the end of the file, ends every sounding note and sends the panic CCs.
"""

from __future__ import annotations

import argparse
import time

from rtgen.errors import RtgenError

START_DELAY_S = 0.2  # from opening the port to the first message: connections settle, the thread is up
PLAYED_TYPES = frozenset({"note_on", "note_off", "control_change", "program_change", "pitchwheel"})


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play",
        help="play a .mid to a MIDI port with rtgen's scheduler",
        description="Play every channel message of a standard MIDI file to a MIDI port, at the file's times "
        "(or at --tempo), with the daemon's output scheduler; the end or Ctrl-C closes every note.",
    )
    parser.add_argument("file", help="the .mid (a take, a generated piece)")
    parser.add_argument("--out", help="the port to play to (default: rtgen's own virtual 'rtgen out')")
    parser.add_argument("--backend", default="auto", choices=("auto", "jack", "alsa", "coremidi", "windows"))
    parser.add_argument("--tempo", type=float, help="play at this tempo in BPM (default: the file's)")
    parser.set_defaults(handler=run)


def timed_messages(path: str, tempo_bpm: float | None) -> list[tuple[float, object]]:
    """``(seconds from the start, message)`` of the file's channel messages, at ``tempo_bpm`` if given."""
    import mido

    from rtgen.live.clock import check_tempo

    try:
        midi = mido.MidiFile(path)
    except FileNotFoundError:
        raise RtgenError(f"{path}: no such MIDI file") from None
    except (OSError, EOFError, ValueError, KeyError) as error:
        raise RtgenError(f"{path}: not a readable MIDI file ({error})") from None
    tempi = [m.tempo for track in midi.tracks for m in track if m.type == "set_tempo"]
    scale = 1.0 if tempo_bpm is None else mido.tempo2bpm(tempi[0] if tempi else 500000) / check_tempo(tempo_bpm)
    now, timed = 0.0, []
    for message in midi:  # merged tracks, ``time`` in seconds through the tempo map
        now += message.time
        if message.type in PLAYED_TYPES:
            timed.append((now * scale, message.copy(time=0)))
    if not any(m.type == "note_on" for _, m in timed):
        raise RtgenError(f"{path}: no notes to play")
    return timed


def run(args: argparse.Namespace) -> int:
    from rtgen.live.scheduler import OutputScheduler
    from rtgen.midi.ports import open_output

    timed = timed_messages(args.file, args.tempo)
    port = open_output(args.out, args.backend)
    scheduler = OutputScheduler(port)
    scheduler.start()
    start = time.perf_counter() + START_DELAY_S
    for t, message in timed:
        scheduler.schedule(start + t, message)
    end = start + timed[-1][0] + 0.05
    print(f"rtgen: playing {args.file} ({timed[-1][0]:.1f} s) to {port.name}; Ctrl-C stops")
    try:
        while (left := end - time.perf_counter()) > 0:
            time.sleep(min(left, 0.1))
    except KeyboardInterrupt:
        print("rtgen: stopped")
    finally:
        scheduler.stop()  # every sounding note ends, then CC64=0/123/120
        stats = scheduler.stats()
        port.close()
    notes = sum(1 for _, m in timed if m.type == "note_on" and m.velocity)
    print(
        f"rtgen: sent {stats.count} messages ({notes} notes); send error p99 {stats.p99_ms:.3f} ms, late {stats.late}"
    )
    return 0
