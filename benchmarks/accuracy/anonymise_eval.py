"""Anonymization measured on ground truth: generated videos from val-dev photos, and val-dev stills.

    flock /tmp/retinakit-cpu.lock python -m benchmarks.accuracy.anonymise_eval [--clips 8 --frames 100] [--stills]

Videos: each clip is a 640x480 camera moving over one val-dev photo -- pan, zoom (0.8-1.5x),
rotation (up to +-6 degrees) and brightness changes (gain 0.55-1.35) along known paths -- written
as MJPG AVI, so every frame has ground truth: the official boxes mapped by the same transform
(a quadrilateral per face). A face counts in a frame when it lies wholly inside the frame and its
shorter side is at least 16 px there. Each clip is anonymized by the library's own video job
(decode, detect, track, blur, encode), without and with tracking, and scored from the sidecar:
- hidden: the hiding mask covers >= 90 % of the face's pixels;
- flicker: a face hidden in frame t-1 and visible (not hidden) in frame t;
- ID switches (with tracking): a face matched (IoU >= 0.5) to a different track ID than last time;
- frames/s of the whole job.
Stills (``--stills``): the fraction of val-dev faces per WIDER difficulty (official keep lists)
hidden at the default threshold (and, for comparison, others), without TTA.
``--train-thresholds``: the study on the training subset that chose the default threshold.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness.data import SHARED
from retinakit import Detector
from retinakit.apps.anonymize import DEFAULT_THRESHOLD, anonymize_video
from retinakit.apps.track import TrackerConfig, greedy_assign
from retinakit.core.boxes import box_iou
from retinakit.io.annotations import parse_wider_gt
from retinakit.ops.masks import AnonymizeConfig, hide_mask

MIN_FACE = 16


COVERED = 0.9


# ---------------------------------------------------------------- generated videos


def pick_photos(wider: Path, count: int) -> list[tuple[Path, np.ndarray]]:
    """Val-dev photos with 1-12 valid faces, at least one of 24 px, spread over the events."""
    annotations = parse_wider_gt(wider / "val-dev" / "wider_face_val_bbx_gt.txt")
    ok = [a for a in annotations if 1 <= len(a) <= 12 and ((a.boxes[:, 2:4] - a.boxes[:, :2]).min(1) >= 24).any()]
    step = max(1, len(ok) // count)
    chosen = ok[::step][:count]
    return [(wider / "val-dev" / "images" / a.image, a.boxes.astype(np.float64)) for a in chosen]


def camera_path(clip: int, frames: int, photo_hw: tuple[int, int], size: tuple[int, int]) -> list[np.ndarray]:
    """One 2x3 affine (photo -> frame) per frame: pan, zoom, small rotation, all smooth and known."""
    rng = np.random.default_rng(clip)
    ph, pw = photo_hw
    w, h = size
    base = max(w / pw, h / ph) * 1.05  # the frame is covered by the photo at zoom 1
    phase = rng.uniform(0, 2 * np.pi, 3)
    matrices = []
    for t in np.linspace(0, 1, frames):
        zoom = 1.15 + 0.35 * np.sin(2 * np.pi * t + phase[0])  # 0.8 .. 1.5
        angle = 6.0 * np.sin(2 * np.pi * 1.5 * t + phase[1])  # degrees
        scale = base * zoom
        half_w, half_h = w / 2 / scale, h / 2 / scale  # half the visible photo area
        cx = pw / 2 + max(0.0, pw / 2 - half_w) * np.sin(2 * np.pi * t + phase[2])
        cy = ph / 2 + max(0.0, ph / 2 - half_h) * 0.6 * np.cos(2 * np.pi * t + phase[2])
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), float(scale))
        m[:, 2] += (w / 2 - cx, h / 2 - cy)
        matrices.append(m)
    return matrices


def write_clip(path: Path, photo: np.ndarray, boxes: np.ndarray, clip: int, frames: int, fps: int) -> list[dict]:
    """Write the clip; returns per frame the visible faces: ``{face index: quadrilateral (4, 2)}``."""
    size = (640, 480)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    corners = np.stack(
        [boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1
    )  # (N, 4, 2) in the photo
    truth = []
    for i, m in enumerate(camera_path(clip, frames, photo.shape[:2], size)):
        gain = 0.95 + 0.4 * np.sin(2 * np.pi * (i / frames) * 2 + clip)  # 0.55 .. 1.35
        frame = cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        frame = cv2.convertScaleAbs(frame, alpha=gain, beta=0)
        writer.write(frame)
        quads = corners @ m[:, :2].T + m[:, 2]
        side = np.sqrt(np.abs(np.linalg.det(m[:, :2]))) * (boxes[:, 2:4] - boxes[:, 0:2]).min(1)
        inside = (quads >= 0).all((1, 2)) & (quads[..., 0] <= size[0]).all(1) & (quads[..., 1] <= size[1]).all(1)
        truth.append({int(k): quads[k] for k in np.flatnonzero(inside & (side >= MIN_FACE))})
    writer.release()
    return truth


def coverage(mask: np.ndarray, quad: np.ndarray) -> float:
    """Fraction of the pixels of a face quadrilateral inside ``mask``."""
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int)
    poly = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(poly, np.round((quad - (x0, y0)) * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    inside = poly.astype(bool)
    return float(mask[y0:y1, x0:x1][inside].mean()) if inside.any() else 1.0


def score_clip(truth: list[dict], sidecar: dict, config: AnonymizeConfig) -> dict[str, int]:
    by_frame = {f["frame"]: f["faces"] for f in sidecar["frames"]}
    visible = hidden = flicker = flicker_frames = switches = 0
    was_hidden: dict[int, bool] = {}
    last_id: dict[int, int] = {}
    for index, faces_now in enumerate(truth):
        shown = by_frame.get(index, [])
        boxes = np.array([f["box"] for f in shown]).reshape(-1, 4)
        mask = hide_mask(boxes, 480, 640, config)
        now: dict[int, bool] = {}
        for k, quad in faces_now.items():
            now[k] = coverage(mask, quad) >= COVERED
        visible += len(now)
        hidden += sum(now.values())
        flicks = sum(1 for k, h in now.items() if not h and was_hidden.get(k, False))
        flicker += flicks
        flicker_frames += flicks > 0
        was_hidden = now
        if shown and "track_id" in shown[0] and faces_now:
            keys = list(faces_now)
            gt = np.array([np.concatenate([faces_now[k].min(0), faces_now[k].max(0)]) for k in keys])
            rows, cols = greedy_assign(box_iou(gt, boxes), 0.5)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                tid = shown[c]["track_id"]
                if keys[r] in last_id and last_id[keys[r]] != tid:
                    switches += 1
                last_id[keys[r]] = tid
    return {
        "frames": len(truth),
        "visible": visible,
        "hidden": hidden,
        "flicker": flicker,
        "flicker_frames": flicker_frames,
        "switches": switches,
    }


def run_videos(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    clips = []
    for c, (path, boxes) in enumerate(pick_photos(args.wider, args.clips)):
        clip = work / f"clip_{c:02d}.avi"
        truth = write_clip(clip, cv2.imread(str(path)), boxes, c, args.frames, args.fps)
        clips.append((clip, truth))
    faces_per_frame = np.mean([len(t) for _, truth in clips for t in truth])
    print(
        f"{len(clips)} clips x {args.frames} frames (640x480, {args.fps} fps) from val-dev photos; "
        f"{faces_per_frame:.1f} ground-truth faces >= {MIN_FACE} px per frame"
    )
    config = AnonymizeConfig()
    threshold = args.threshold
    tracked = TrackerConfig(high_threshold=threshold, low_threshold=min(0.1, threshold))
    variants = {
        "frame by frame (no tracking)": (threshold, None),
        "tracking, no gap bridging": (tracked.low_threshold, replace(tracked, bridge_frames=0)),
        "tracking (default, bridges 10 frames)": (tracked.low_threshold, tracked),
    }
    print(f"threshold {threshold}, {config.method} {config.shape}, margin {config.margin}; hidden = mask covers >= 90%")
    header = f"{'':<40}{'hidden %':>9}{'flicker/100f':>13}{'flicker frames':>15}{'ID sw/100f':>11}{'frames/s':>9}"
    print(header)
    results = {}
    for name, (det_threshold, tracker) in variants.items():
        detector = Detector(score_threshold=det_threshold, threads=args.threads)
        totals: dict[str, int] = {}
        elapsed = 0.0
        for clip, truth in clips:
            out = work / "out" / name.split()[0] / f"{clip.stem}.mp4"
            start = time.perf_counter()
            sidecar = anonymize_video(clip, out, detector, config, threshold, tracker)
            elapsed += time.perf_counter() - start
            for key, value in score_clip(truth, sidecar, config).items():
                totals[key] = totals.get(key, 0) + value
        f = totals["frames"]
        row = {
            "hidden_pct": 100 * totals["hidden"] / totals["visible"],
            "flicker_per_100_frames": 100 * totals["flicker"] / f,
            "flicker_frames": totals["flicker_frames"],
            "id_switches_per_100_frames": 100 * totals["switches"] / f if tracker else None,
            "fps": f / elapsed,
            **totals,
        }
        results[name] = row
        switches = f"{row['id_switches_per_100_frames']:>11.2f}" if tracker else f"{'-':>11}"
        print(
            f"{name:<40}{row['hidden_pct']:>9.2f}{row['flicker_per_100_frames']:>13.2f}"
            f"{row['flicker_frames']:>15d}{switches}{row['fps']:>9.1f}"
        )
    (work / "video_results.json").write_text(json.dumps(results, indent=1))


# ---------------------------------------------------------------- stills


def hidden_fraction(image_hw: tuple[int, int], gt_xywh: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per ground-truth face: covered >= 90 % by the hiding mask of ``boxes``."""
    mask = hide_mask(boxes, *image_hw)
    out = np.zeros(len(gt_xywh), dtype=bool)
    for i, (x, y, w, h) in enumerate(gt_xywh.astype(int)):
        region = mask[max(y, 0) : y + max(h, 1), max(x, 0) : x + max(w, 1)]
        out[i] = region.size > 0 and region.mean() >= COVERED
    return out


def detect_all(root: Path, names: list[str], threads: int | None) -> dict[str, tuple[tuple[int, int], np.ndarray]]:
    detector = Detector(score_threshold=0.02, threads=threads)
    found = {}
    for name in names:
        image = cv2.imread(str(root / name))
        faces = detector.detect_bgr([image])[0]
        found[name] = (image.shape[:2], np.concatenate([faces.boxes, faces.scores[:, None]], 1))
    return found


def run_stills(args: argparse.Namespace, thresholds: tuple[float, ...]) -> None:
    from retinakit.evaluation.wider import WiderGroundTruth, read_image_list

    names = read_image_list(args.wider / "val-dev" / "image_list.txt")[:: args.stills_step]
    gt = WiderGroundTruth.from_mat_dir(args.wider / "ground_truth", names)
    start = time.perf_counter()
    found = detect_all(args.wider / "val-dev" / "images", [f"{n}.jpg" for n in names], args.threads)
    seconds = time.perf_counter() - start
    print(f"val-dev stills: {len(names)} images, {seconds / len(names) * 1000:.0f} ms/image detection (original size)")
    print(f"{'threshold':>10}" + "".join(f"{s + ' %':>10}" for s in ("easy", "medium", "hard", ">=16px")))
    for t in thresholds:
        counts = {s: [0, 0] for s in ("easy", "medium", "hard", "16")}
        for name in names:
            hw, dets = found[f"{name}.jpg"]
            truth = gt.images[name]
            hidden = hidden_fraction(hw, truth.boxes, dets[dets[:, 4] >= t, :4])
            big = truth.boxes[:, 2:4].min(1) >= MIN_FACE
            for s, keep in (*truth.keep.items(), ("16", big)):
                counts[s][0] += int(hidden[keep].sum())
                counts[s][1] += int(keep.sum())
        print(f"{t:>10.2f}" + "".join(f"{100 * h / max(n, 1):>10.2f}" for h, n in counts.values()))


def run_train_thresholds(args: argparse.Namespace, thresholds: tuple[float, ...]) -> None:
    """Hidden faces (>= 16 px) and hidden regions touching no face, per threshold, on the training subset."""
    annotations = parse_wider_gt(args.wider / "train-subset" / "wider_face_train_bbx_gt.txt", skip_invalid=False)
    annotations = annotations[:: args.stills_step]
    found = detect_all(args.wider / "train-subset" / "images", [a.image for a in annotations], args.threads)
    print(f"training subset: {len(annotations)} images")
    print(f"{'threshold':>10}{'hidden >=16px %':>17}{'hidden all %':>14}{'regions on no face / image':>28}")
    for t in thresholds:
        hid = big_hid = n = n_big = stray = 0
        for a in annotations:
            hw, dets = found[a.image]
            boxes = dets[dets[:, 4] >= t, :4]
            xywh = np.concatenate([a.boxes[:, :2], a.boxes[:, 2:4] - a.boxes[:, :2]], 1)
            hidden = hidden_fraction(hw, xywh, boxes)
            big = xywh[:, 2:4].min(1) >= MIN_FACE
            hid, n = hid + int(hidden.sum()), n + len(xywh)
            big_hid, n_big = big_hid + int(hidden[big].sum()), n_big + int(big.sum())
            if len(boxes):
                touching = box_iou(boxes, a.boxes).max(1) > 0 if len(a) else np.zeros(len(boxes), bool)
                stray += int((~touching).sum())
        print(f"{t:>10.2f}{100 * big_hid / n_big:>17.2f}{100 * hid / n:>14.2f}{stray / len(annotations):>28.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", default="/tmp/anonymise_eval", help="generated clips and outputs go here")
    parser.add_argument("--no-videos", action="store_true")
    parser.add_argument("--stills", action="store_true", help="also the val-dev stills table")
    parser.add_argument("--train-thresholds", action="store_true", help="the threshold study on the training subset")
    parser.add_argument("--stills-step", type=int, default=1, help="use every N-th image for the stills")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (../shared)")
    args = parser.parse_args()
    args.wider = args.shared / "data" / "widerface"
    thresholds = (0.1, 0.2, DEFAULT_THRESHOLD, 0.5, 0.7)
    if args.train_thresholds:
        run_train_thresholds(args, (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7))
    if not args.no_videos:
        run_videos(args)
    if args.stills:
        run_stills(args, tuple(sorted(set(thresholds))))


if __name__ == "__main__":
    main()
