"""``rtgen generate``: write N bars from a preset (or genre weights) and a seed phrase to .mid and MusicXML."""

from __future__ import annotations

import argparse
from fractions import Fraction

from rtgen.errors import RtgenError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a MIDI (and MusicXML) file from a preset and a seed phrase",
        description="Generate N bars offline with the same engine that plays live. Flags override the preset.",
    )
    parser.add_argument("--preset", help="preset name or .toml path (default: equal weights over installed genres)")
    parser.add_argument("--genres", help="genre weights, e.g. folk=5,fiddle=1 (a bare name weighs 1)")
    parser.add_argument("--method", choices=("mixture", "product", "conditional", "two-phase"))
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--sampling", choices=("sample", "argmax", "hybrid"))
    parser.add_argument("--expression", type=float, help="0-1: velocities and timing as played; 0 = as decoded")
    parser.add_argument("--swing", type=float, help="0-0.75: off-beat eighths late (0.5 = triplet feel)")
    parser.add_argument(
        "--seed-midi",
        help="a .mid whose notes prime the models (default: the preset's phrase, else a real opening of the "
        "heaviest genre, one per --seed)",
    )
    parser.add_argument(
        "--from-rests",
        nargs="?",
        type=int,
        const=0,
        metavar="STEPS",
        help="prime time-step models with STEPS rests only, the fiddle paper's seed (no number: the training window)",
    )
    parser.add_argument("--bars", type=int, default=16, help="bars of 4/4 to generate (default 16)")
    parser.add_argument("--tempo", type=float, help="tempo in BPM written to the file (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same file")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("-o", "--out", required=True, help="output .mid path")
    parser.add_argument("--musicxml", help="also write MusicXML to this path")
    parser.add_argument("--wav", help="also render the piece to this WAV with fluidsynth (heaviest genre's sound)")
    parser.add_argument("--soundfont", help="--wav: the .sf2 to render with (default: the first installed one found)")
    parser.add_argument(
        "--interpolate",
        nargs=2,
        metavar=("A.mid", "B.mid"),
        help="with a vae model in --genres: phrases along the line from A's first 2 bars to B's, one after another",
    )
    parser.add_argument("--steps", type=int, default=4, help="--interpolate: phrases written, A and B included")
    parser.set_defaults(handler=run)


def build_preset(args: argparse.Namespace):
    """The preset named by ``--preset`` (or a default one) with the command line's overrides applied."""
    import dataclasses

    from rtgen.daemon.presets import Preset, load_preset
    from rtgen.engine.controls import parse_weights
    from rtgen.live.clock import check_tempo
    from rtgen.nets.checkpoint import genre_models

    preset = load_preset(args.preset) if args.preset else Preset(name="generate")
    changes = {
        "weights": parse_weights(args.genres) if args.genres else None,
        "method": args.method,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "sampling": args.sampling,
        "expression": args.expression,
        "swing": args.swing,
    }
    controls = preset.controls.replace(**{k: v for k, v in changes.items() if v is not None})
    if not controls.weights:
        genres = genre_models()  # the same default as `rtgen run` (rtgen.daemon.wiring.shipped_genres)
        if not genres:
            raise RtgenError("no genre models installed; train one (rtgen train) or pass --genres with model paths")
        controls = controls.replace(weights=dict.fromkeys(genres, 1.0))
    tempo = check_tempo(args.tempo) if args.tempo is not None else preset.tempo_bpm
    return dataclasses.replace(preset, controls=controls, tempo_bpm=tempo)


def seed_notes(args: argparse.Namespace, preset) -> tuple[list, Fraction | None]:
    """The seed phrase, and its length in beats where it is a real opening of whole bars (else None: the piece
    begins where its last note ends), so a piece after a real opening keeps the tune's bar lines."""
    from rtgen.data.profile import OPENING_BARS
    from rtgen.data.seeds import PHRASES, genre_opening, load_phrase
    from rtgen.engine.offline import BEATS_PER_BAR

    if args.from_rests is not None:  # rests only: generate_notes feeds them (rest_steps)
        if args.seed_midi:
            raise RtgenError("--from-rests and --seed-midi both choose the seed; give one of them")
        return [], None
    if args.seed_midi:
        return load_phrase(args.seed_midi), None
    if preset.seed_phrase:
        return load_phrase(preset.seed_phrase), None
    heaviest = max(preset.controls.weights, key=preset.controls.weights.get)
    real = genre_opening(heaviest, args.seed)  # a real opening of the heaviest genre, one per --seed
    if real is not None:
        return real, Fraction(OPENING_BARS * BEATS_PER_BAR)
    return load_phrase(heaviest if heaviest in PHRASES else "folk"), None


def run(args: argparse.Namespace) -> int:
    from rtgen.cli.outputs import output_file
    from rtgen.cli.progress import Counter
    from rtgen.engine.offline import TICKS_PER_BEAT, generate_notes, piece_stats, write_midi, write_musicxml
    from rtgen.engine.variation import VariationEngine, is_vae
    from rtgen.engine.warm import Engine
    from rtgen.live.expression import dynamics
    from rtgen.nets.checkpoint import CONDITIONAL_MODEL
    from rtgen.nets.twophase import TWO_PHASE_MODEL

    out = output_file(args.out, "-o")
    musicxml = output_file(args.musicxml, "--musicxml") if args.musicxml else None
    wav = output_file(args.wav, "--wav") if args.wav else None
    soundfont = _soundfont(args) if wav else None  # a missing synth is said before the models load
    preset = build_preset(args)
    if args.interpolate:
        return interpolate(args, preset, out)
    phrase, phrase_beats = seed_notes(args, preset)
    if any(is_vae(name) for name in preset.controls.weights):  # variations of the seed phrase, 2 bars at a time
        engine = VariationEngine.from_names(list(preset.controls.weights), args.device, preset.controls, args.seed)
    elif preset.controls.method == "conditional":  # the multi-genre model alone: no genre model needs stepping
        engine = Engine.from_names(
            [], args.device, preset.controls, conditional=CONDITIONAL_MODEL, twophase=None, seed=args.seed
        )
    elif preset.controls.method == "two-phase":  # the fusion paper's model alone, fed the weights
        engine = Engine.from_names(
            [], args.device, preset.controls, conditional=None, twophase=TWO_PHASE_MODEL, seed=args.seed
        )
    else:
        genres = list(preset.controls.weights)
        engine = Engine.from_names(
            genres, args.device, preset.controls, conditional=None, twophase=None, seed=args.seed
        )
    counter = Counter("generate", args.bars, "bars")
    rests = rest_steps(args, preset)
    closes: list[float] = []
    notes = generate_notes(
        engine,
        phrase,
        args.bars,
        seed=args.seed,
        on_bar=counter,
        rest_steps=rests,
        closes=closes,
        phrase_beats=phrase_beats,
    )
    form = engine.beats_to_section_end is not None  # else expression counts 8-bar sections
    played = express(notes, preset.controls, phrase if args.seed_midi else (), closes if form else None)
    path = write_midi(played, out, preset.tempo_bpm, name=f"rtgen {preset.name}", steps_per_beat=TICKS_PER_BEAT)
    print(f"{path}: {args.bars} bars at {preset.tempo_bpm:g} BPM, {piece_stats(notes, args.bars).line()}")
    print(f"played: {dynamics(sorted(notes), played).line()}")
    if musicxml:  # the score shows the notes as composed; the MIDI file, as played
        print(f"{write_musicxml(notes, musicxml, preset.tempo_bpm, title=preset.name)}: MusicXML")
    if wav:
        _render(path, wav, soundfont, preset.controls.weights)
    return 0


def _soundfont(args: argparse.Namespace):
    from rtgen.daemon.synth import find_soundfont, fluidsynth_path

    fluidsynth_path()
    return find_soundfont(args.soundfont)


def _render(midi, wav, soundfont, weights) -> None:
    from rtgen.daemon.instrument import blend_program, heaviest_genre
    from rtgen.daemon.synth import render

    program = blend_program(weights, {})
    path = render(midi, wav, soundfont, program)
    print(f"{path}: rendered with {soundfont.name}, {heaviest_genre(weights)}'s GM program {program}")


def express(notes, controls, call, section_ends=None):
    """The piece as played (``rtgen.live.expression``); a ``--seed-midi`` phrase is the performer's call.

    ``section_ends``: beats where the engine's form closed its sections (None: 8-bar sections).
    """
    from rtgen.live.expression import Performer, express_notes

    performer = Performer.from_velocities([n.velocity for n in call])
    return express_notes(notes, controls.expression, controls.swing, performer, section_ends=section_ends)


def interpolate(args: argparse.Namespace, preset, out) -> int:
    """``--interpolate A B``: the vae's phrases from A's first two bars to B's, written one after another."""
    from rtgen.data.seeds import load_phrase
    from rtgen.engine.offline import write_midi
    from rtgen.engine.variation import PhraseModel
    from rtgen.nets.checkpoint import load_model
    from rtgen.nets.device import pick_device

    names = list(preset.controls.weights)
    if len(names) != 1:
        raise RtgenError(f"--interpolate needs one vae model in --genres, got {len(names)} models")
    phrases = PhraseModel(load_model(names[0], device=str(pick_device(args.device)), kind="vae"))
    first, last = (load_phrase(path) for path in args.interpolate)
    notes = phrases.interpolate(first, last, args.steps)
    path = write_midi(notes, out, preset.tempo_bpm, name=f"rtgen {names[0]} interpolation")
    print(
        f"{path}: {args.steps} phrases of {float(phrases.beats):g} beats from {args.interpolate[0]} to "
        f"{args.interpolate[1]}, {len(notes)} notes"
    )
    return 0


def rest_steps(args: argparse.Namespace, preset) -> int:
    """Rest steps of the ``--from-rests`` seed: the number given, else the longest window the models read.

    The fiddle paper fills each network's whole input (64, 128 or 256 steps)
    with rests; a model's window is its ``window`` or its training ``seq_len``
    in meta.json, and one bar for a checkpoint that records neither.
    """
    from rtgen.engine.offline import BEATS_PER_BAR
    from rtgen.nets.checkpoint import read_meta, resolve

    if args.from_rests is None:
        return 0
    if args.from_rests:
        return args.from_rests
    windows = []
    for name in preset.controls.weights:
        meta = read_meta(resolve(name))
        bar = BEATS_PER_BAR * meta["encoding"].get("steps_per_beat", 4)
        windows.append(meta["config"].get("window") or meta.get("train", {}).get("seq_len") or bar)
    return max(windows)
