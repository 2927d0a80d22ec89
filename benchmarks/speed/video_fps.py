"""Video throughput of ``retinakit detect VIDEO`` on a generated 10-second 640x480 clip.

    python -m benchmarks.speed.video_fps [--seconds 10] [--fps 25]

The clip is written here from real photos (val-dev images from ../shared, or scikit-image
photos), panning across each photo so every frame differs. Prints frames per second end to end
(decoding + detection + JSON records) and checks that there is one record per frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness.data import VALDEV_IMAGES, fallback_photos, load_photos
from retinakit import Detector
from retinakit.apps.video import detect_video


def photos() -> list[np.ndarray]:
    """Every 100th val-dev photo (or two scikit-image photos without the data)."""
    if VALDEV_IMAGES.is_dir():
        return load_photos(11, step=100)
    return fallback_photos(2)


def write_clip(path: Path, seconds: int, fps: int) -> int:
    frames = seconds * fps
    sources = [cv2.resize(p, (800, 600)) for p in photos()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (640, 480))
    per_photo = max(1, frames // len(sources))
    for i in range(frames):
        src = sources[min(i // per_photo, len(sources) - 1)]
        x = (i % per_photo) * 160 // per_photo
        writer.write(np.ascontiguousarray(src[60:540, x : x + 640]))
    writer.release()
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        frames = write_clip(clip, args.seconds, args.fps)
        detector = Detector()
        start = time.perf_counter()
        records = list(detect_video(clip, detector))
        elapsed = time.perf_counter() - start
        complete = [r["frame"] for r in records] == list(range(frames))
        print(
            f"library: {frames} frames of 640x480 in {elapsed:.2f} s = {frames / elapsed:.1f} frames/s; "
            f"one record per frame: {complete}; faces found in {sum(bool(r['faces']) for r in records)} frames"
        )
        out = Path(tmp) / "frames.jsonl"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "retinakit", "detect", str(clip), "-o", str(out), "--no-progress"], check=True
        )
        elapsed = time.perf_counter() - start
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        print(
            f"CLI (process start included): {frames / elapsed:.1f} frames/s; {len(lines)} records for {frames} frames"
        )


if __name__ == "__main__":
    main()
