"""``retinakit quantize``: an int8 copy of an ONNX model, calibrated on training images (needs onnx)."""

from __future__ import annotations

import argparse
from typing import Any

from retinakit.cli.common import EXIT_OK, default


def add_parser(subparsers: Any) -> None:
    from retinakit.onnx.quantize import QuantizeConfig

    d = QuantizeConfig()
    p = subparsers.add_parser(
        "quantize",
        help="int8-quantise an ONNX model (default: the built-in one), calibrated on training images",
    )
    p.add_argument("calibration", nargs="+", help="calibration images: files, directories or globs (training data)")
    p.add_argument("-o", "--output", required=True, help="int8 ONNX file to write")
    p.add_argument("--weights", help="float ONNX model to quantise (default: the built-in MobileNet-0.25)")
    p.add_argument("--model", help="model preset, for ONNX files without a stored config (default: the file's own)")
    p.add_argument(
        "--num-images", type=int, default=d.num_images, help=f"calibration images used {default(d.num_images)}"
    )
    p.add_argument("--max-side", type=int, default=d.max_side, help=f"calibration long side {default(d.max_side)}")
    p.add_argument(
        "--ranges", choices=("mse", "minmax"), default=d.ranges, help=f"activation ranges {default(d.ranges)}"
    )
    p.add_argument(
        "--keep-float",
        default=",".join(d.keep_float),
        help=f"comma-separated node-name prefixes kept in fp32, '' for none {default(','.join(d.keep_float))}",
    )
    p.add_argument(
        "--equalise",
        default=",".join(d.equalise),
        help="comma-separated node-name prefixes of convolutions whose output channels are equalised before "
        "quantising (retinakit.onnx.equalise), e.g. /backbone/stage1 (default: none)",
    )
    p.add_argument(
        "--equalise-strength",
        type=float,
        default=d.equalise_strength,
        help=f"exponent for activations feeding dense convolutions, 0..1 {default(d.equalise_strength)}",
    )
    p.add_argument(
        "--float-input", action="store_true", help="keep the float NCHW input (default: a uint8 image input)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.config import get_preset
    from retinakit.inference.backends import builtin_weights
    from retinakit.io.inputs import list_images
    from retinakit.onnx.quantize import QuantizeConfig, quantize_onnx

    options = QuantizeConfig(
        num_images=args.num_images,
        max_side=args.max_side,
        ranges=args.ranges,
        keep_float=tuple(p for p in args.keep_float.split(",") if p),
        fused_input=not args.float_input,
        equalise=tuple(p for p in args.equalise.split(",") if p),
        equalise_strength=args.equalise_strength,
    )
    images = list_images(args.calibration)
    source = args.weights or builtin_weights("onnx")
    recipe = quantize_onnx(source, args.output, images, get_preset(args.model) if args.model else None, options)
    print(f"wrote {args.output} ({len(recipe['calibration'])} calibration images of {len(images)})")
    return EXIT_OK
