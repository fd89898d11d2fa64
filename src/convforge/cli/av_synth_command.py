"""``convforge av-synth {ave,llp} SOURCE OUT``: write semi-synthetic features on real AVE or LLP labels."""

from __future__ import annotations

import argparse

NAME = "av-synth"
HELP = "write semi-synthetic AVE or LLP features on the real labels, in the standard file layouts"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Make per-second audio and visual features for the real labels and event timings of AVE or LLP "
        "(class prototypes over a calibrated background at a chosen signal-to-noise ratio) and write them as the "
        "standard feature files, which the av-event and av-parse tasks read as they would the real release. "
        "Results on them measure temporal localisation on controlled data, not the published benchmark.",
    )
    parser.add_argument("dataset", choices=("ave", "llp"), help="which layout to write")
    parser.add_argument("source", help="the folder with the real labels (AVE: Annotations.txt and the split files; "
                        "LLP: the AVVP_*.csv files)")  # fmt: skip
    parser.add_argument("out", help="the folder to write (new or empty)")
    parser.add_argument("--snr", type=float, default=-10.0, help="signal-to-noise ratio of events in dB (default -10)")
    parser.add_argument("--audio-only", type=float, default=0.0, help="fraction of events only heard (default 0)")
    parser.add_argument("--visual-only", type=float, default=0.0, help="fraction of events only seen (default 0)")
    parser.add_argument("--videos", type=int, default=None, help="keep N videos of each split, drawn with the seed")
    parser.add_argument("--visual-maps", action="store_true", help="AVE: 7x7x512 visual maps instead of 512-d")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.data.av_synthetic import SynthSettings
    from convforge.data.av_synthetic_files import write_ave_synthetic, write_llp_synthetic
    from convforge.errors import ConvforgeError

    settings = SynthSettings(args.snr, args.audio_only, args.visual_only, args.seed)
    common = dict(videos=args.videos, overwrite=args.overwrite, progress=not args.quiet)
    if args.dataset == "ave":
        out = write_ave_synthetic(args.source, args.out, settings, visual_maps=args.visual_maps, **common)
    elif args.visual_maps:
        raise ConvforgeError("--visual-maps applies to AVE only; LLP's visual features are per frame and per clip")
    else:
        out = write_llp_synthetic(args.source, args.out, settings, **common)
    print(f"{args.dataset.upper()}-synth written to {out} (see {out / 'SYNTHETIC.json'})")
    return 0
