"""Where a detection path spends its time at one size: preprocessing, the network, post-processing.

    python -m benchmarks.speed.stages [--paths default,numpy-fp32,fp32,int8] [--size vga] [--images 12]

For each path (ONNX Runtime paths only: OpenVINO and torch hide their stages), batch 1: the resize
policy plus batch building, the network call, and decoding plus NMS, each the best of ``--repeat``
passes over the photos in ms per image, with its share of the three. Then the network's work at
that size (convolution multiply-adds x 2, counted on the PyTorch model; needs the ``torch`` extra)
and the GFLOP/s the default path's network reaches, against an fp32 peak of cores x clock x 32
FLOP/cycle (two 256-bit FMA pipes per core). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness.data import SIZES, at_size, load_photos
from benchmarks.harness.paths import PathSpec, select
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.harness.timing import call_ms


def detector_of(spec: PathSpec) -> Any:
    """The Detector behind a retinakit path spec (ImportError / FileNotFoundError when unavailable)."""
    from retinakit import Detector

    if spec.kind == "numpy-fp32":
        from retinakit.inference.backends import OnnxBackend, builtin_weights

        return Detector(score_threshold=0.5, backend_instance=OnnxBackend(builtin_weights("onnx")))
    return Detector(score_threshold=0.5, **spec.options)


def stage_profile(det: Any, images: list[np.ndarray], repeat: int) -> dict[str, float]:
    """ms per image of preprocess (resize policy + batch), network and post-process, best of ``repeat``."""
    from retinakit.inference.preprocess import make_batch, make_uint8_batch, resize

    fused = det.backend.input_layout == "nhwc_uint8"
    spec = det.model_config.input

    def prepare(im: np.ndarray) -> tuple[np.ndarray, object]:
        r, frame = resize(im, det.config.resize_policy)
        return (make_uint8_batch([r], spec) if fused else make_batch([r], spec)), frame

    prepared = [prepare(im) for im in images]
    raws = [det.backend(b) for b, _ in prepared]

    def hw(b: np.ndarray) -> tuple[int, int]:
        return (b.shape[1], b.shape[2]) if fused else (b.shape[2], b.shape[3])

    def timed(f: Callable[[], object]) -> float:
        f()
        return min(call_ms(f) for _ in range(repeat)) / len(images)

    return {
        "preprocess": timed(lambda: [prepare(im) for im in images]),
        "network": timed(lambda: [det.backend(b) for b, _ in prepared]),
        "postprocess": timed(
            lambda: [det.postprocess(r, *hw(b), [f]) for r, (b, f) in zip(raws, prepared, strict=True)]
        ),
    }


def flops_at(width: int, height: int) -> float | None:
    """Multiply-adds x 2 of the MobileNet-0.25 network at ``width`` x ``height`` (None without torch)."""
    try:
        import torch

        from retinakit.models import build_model
    except ImportError:
        return None
    model = build_model("mobilenet0.25").eval()
    total = 0

    def hook(mod: Any, inp: Any, out: Any) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += 2 * k * out.numel()

    def heads_hook(mod: Any, inp: Any, out: Any) -> None:  # the heads run as one F.conv2d per level
        nonlocal total
        channels = sum(c.out_channels for c in (mod.box[0], mod.cls[0], mod.landmarks[0]))
        total += sum(2 * f.shape[1] * channels * f.shape[2] * f.shape[3] for f in inp[0])

    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and not name.startswith("heads."):
            m.register_forward_hook(hook)
    model.heads.register_forward_hook(heads_hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    return float(total)


def cpu_peak_gflops() -> tuple[float, str]:
    """Peak fp32 GFLOP/s: cores x clock x 32 FLOP/cycle, and how it was computed."""
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return cores * mhz / 1000 * 32, f"{cores} cores x {mhz / 1000:.2f} GHz x 32 FLOP/cycle"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="default,numpy-fp32,fp32,int8", help="retinakit ONNX Runtime paths")
    parser.add_argument("--size", default="vga", choices=list(SIZES))
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    record = Record("speed/stages", "Where the time goes", sys.argv[1:] if argv is None else argv)
    images = at_size(load_photos(args.images), args.size)
    w, h = SIZES[args.size]
    table = Table(
        f"{args.size.upper()} {w}x{h}, batch 1: ms per image (best of {args.repeat} passes, {args.images} photos)",
        ["path", "preprocess", "network", "postprocess", "preprocess %", "network %", "postprocess %"],
    )
    network = {}
    for spec in select(args.paths):
        if spec.kind == "peer" or spec.options.get("backend") in ("openvino", "torch"):
            record.note(f"{spec.name}: left out (its stages are not separable here)")
            continue
        det = detector_of(spec)
        prof = stage_profile(det, images, args.repeat)
        total = sum(prof.values())
        network[spec.name] = prof["network"]
        table.add(spec.name, *prof.values(), *(100 * v / total for v in prof.values()))
    record.table(table)
    flops, (peak, how) = flops_at(w, h), cpu_peak_gflops()
    if flops and network:
        name = "default" if "default" in network else next(iter(network))
        achieved = flops / (network[name] / 1000) / 1e9
        work = Table(f"Network work at {w}x{h}", ["path", "GFLOP", "GFLOP/s", "% of fp32 peak", "peak GFLOP/s"])
        work.add(name, flops / 1e9, achieved, 100 * achieved / peak if peak else float("nan"), peak)
        work.note = f"peak: {how}; GFLOP = convolution multiply-adds x 2"
        record.table(work)
    record.write(args.json)


if __name__ == "__main__":
    main()
