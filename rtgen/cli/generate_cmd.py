"""``rtgen generate``: write N bars from a preset (or genre weights) and a seed phrase to .mid and MusicXML."""

from __future__ import annotations

import argparse

from rtgen.errors import RtgenError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a MIDI (and MusicXML) file from a preset and a seed phrase",
        description="Generate N bars offline with the same engine that plays live. Flags override the preset.",
    )
    parser.add_argument("--preset", help="preset name or .toml path (default: equal weights over installed genres)")
    parser.add_argument("--genres", help="genre weights, e.g. folk=5,fiddle=1 (a bare name weighs 1)")
    parser.add_argument("--method", choices=("mixture", "product", "conditional"))
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--sampling", choices=("sample", "argmax", "hybrid"))
    parser.add_argument("--seed-midi", help="a .mid whose notes prime the models (default: the preset's phrase)")
    parser.add_argument("--bars", type=int, default=16, help="bars of 4/4 to generate (default 16)")
    parser.add_argument("--tempo", type=float, help="tempo in BPM written to the file (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same file")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("-o", "--out", required=True, help="output .mid path")
    parser.add_argument("--musicxml", help="also write MusicXML to this path")
    parser.set_defaults(handler=run)


def build_preset(args: argparse.Namespace):
    """The preset named by ``--preset`` (or a default one) with the command line's overrides applied."""
    import dataclasses

    from rtgen.daemon.presets import Preset, load_preset
    from rtgen.engine.controls import parse_weights
    from rtgen.live.clock import check_tempo
    from rtgen.nets.checkpoint import installed_models

    preset = load_preset(args.preset) if args.preset else Preset(name="generate")
    changes = {
        "weights": parse_weights(args.genres) if args.genres else None,
        "method": args.method,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "sampling": args.sampling,
    }
    controls = preset.controls.replace(**{k: v for k, v in changes.items() if v is not None})
    if not controls.weights:
        genres = [name for name, meta in installed_models() if not meta.get("config", {}).get("genre_count")]
        if not genres:
            raise RtgenError("no genre models installed; train one (rtgen train) or pass --genres with model paths")
        controls = controls.replace(weights=dict.fromkeys(genres, 1.0))
    tempo = check_tempo(args.tempo) if args.tempo is not None else preset.tempo_bpm
    return dataclasses.replace(preset, controls=controls, tempo_bpm=tempo)


def seed_notes(args: argparse.Namespace, preset):
    from rtgen.data.seeds import PHRASES, load_phrase

    if args.seed_midi:
        return load_phrase(args.seed_midi)
    if preset.seed_phrase:
        return load_phrase(preset.seed_phrase)
    heaviest = max(preset.controls.weights, key=preset.controls.weights.get)
    return load_phrase(heaviest if heaviest in PHRASES else "folk")


def run(args: argparse.Namespace) -> int:
    from rtgen.cli.outputs import output_file
    from rtgen.cli.progress import Counter
    from rtgen.engine.offline import generate_notes, piece_stats, write_midi, write_musicxml
    from rtgen.engine.warm import Engine

    out = output_file(args.out, "-o")
    musicxml = output_file(args.musicxml, "--musicxml") if args.musicxml else None
    preset = build_preset(args)
    phrase = seed_notes(args, preset)
    if preset.controls.method == "conditional":  # the multi-genre model alone: no genre model needs stepping
        engine = Engine.from_names([], args.device, preset.controls, conditional="multi", seed=args.seed)
    else:
        genres = list(preset.controls.weights)
        engine = Engine.from_names(genres, args.device, preset.controls, conditional=None, seed=args.seed)
    counter = Counter("generate", args.bars, "bars")
    notes = generate_notes(engine, phrase, args.bars, seed=args.seed, on_bar=counter)
    path = write_midi(notes, out, preset.tempo_bpm, name=f"rtgen {preset.name}")
    print(f"{path}: {args.bars} bars at {preset.tempo_bpm:g} BPM, {piece_stats(notes, args.bars).line()}")
    if musicxml:
        print(f"{write_musicxml(notes, musicxml, preset.tempo_bpm, title=preset.name)}: MusicXML")
    return 0
