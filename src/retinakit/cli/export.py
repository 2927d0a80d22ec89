"""``retinakit export``: a PyTorch checkpoint to ONNX (needs the torch extra)."""

from __future__ import annotations

import argparse
from typing import Any

from retinakit.cli.common import (
    EXIT_OK,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a PyTorch checkpoint to ONNX")
    p.add_argument("weights", help="checkpoint (.safetensors, .pth)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--model", help="model preset, for checkpoints without a config (default: the checkpoint's own)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: 17; 19 for models with deformable convolutions)")
    p.add_argument(
        "--no-dense",
        action="store_true",
        help="leave out the dense branch: boxes and landmarks only (default: keep it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.config import get_preset
    from retinakit.models.checkpoints import load_model
    from retinakit.models.export import export_onnx

    model = load_model(args.weights, get_preset(args.model) if args.model else None)
    if args.no_dense:
        from retinakit.models.retinaface import without_dense

        model = without_dense(model)
    export_onnx(model, args.output, opset=args.opset)
    print(f"wrote {args.output}")
    return EXIT_OK
