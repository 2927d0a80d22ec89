"""Faces of every size in ordinary photos: phone-size photos, close-ups and rotated photos from val-dev.

    python -m benchmarks.scale.photo_sizes --detector "" --detector max_side=1280 --photos 40
    python -m benchmarks.scale.photo_sizes --mode rotated --detector "" --photos 100
    python -m benchmarks.scale.photo_sizes --mode rotated --detector "orientations=(0,90,180,270)"

``--detector`` (repeatable; the configurations run side by side in one table) takes Detector
keyword arguments as ``key=value`` pairs separated by spaces, values as Python literals
(``max_side=1280 score_threshold=0.3``, ``scales=(500,800)``); ``""`` is ``Detector()``. Keys
``auto.NAME`` set a field of the ``auto`` rule (:class:`retinakit.inference.scales.ScaleConfig`,
e.g. ``auto.keep_max=450``), for trying rules. ``--data train-subset`` builds the photos from the
WIDER FACE training subset instead of val-dev: choose rules there, report on val-dev.

Photos (``--mode sizes``): from the val-dev photos that hold a large face (a valid face whose
shorter side is at least ``--large`` = 10 % of the photo's long side), ``--photos`` are drawn with
``--seed`` (fixed: the same photos every run), and from each are built, one at a time:

- ``phone 4000`` / ``phone 8000``: the photo upscaled (bicubic) so its long side is 4000 / 8000 px
  (a 12 MP / 48 MP phone photo);
- ``close-up``: a square crop around the photo's largest face (side 1.6-3x the face, centre
  jittered), upscaled so its side is 2000-4000 px (drawn with the seed). Faces cut by the crop are
  clipped to it; one with less than 60 % of its box inside becomes an ignored face.

The ground truth (``wider_face_val_bbx_gt.txt``) is mapped by the same transform. A face's size
is the shorter side of its box in the built photo. Columns, per kind of photo and configuration:

- ``faces >= 200``: valid faces of at least 200 px; ``found``: the share of them that some
  detection overlaps at IoU >= 0.5;
- ``false / photo``: detections whose IoU with every annotated face is below 0.3 (valid or
  flagged invalid by WIDER, of any size: a detection of an invalid face is not counted false),
  per photo. Fragments of a big face (an eye, a mouth) overlap it at IoU well below 0.3, so they
  count as false;
- ``ms / photo``: ``Detector.detect_bgr`` on the decoded photo, one photo per call (each detector
  warmed up first on one 640x480 image);
- ``anonymise``: the mean, over the faces >= 200 px, of the share of the face's box that
  ``retinakit.ops.masks.hide_mask`` hides for the faces that the same configuration finds at
  the anonymisation threshold (``--anonymise-threshold``, default the app's 0.3); a second,
  untimed detection run.

``--mode rotated``: ``--photos`` val-dev photos (drawn with the seed from all of them) rotated by
0, 90, 180 and 270 degrees (clockwise), ground truth rotated with them; the recall of valid faces
of at least ``--min-face`` = 40 px (IoU >= 0.5) at each angle, and ms per photo over all angles.

``--mode sharp``: ``--photos`` mosaics, each of 16 photos drawn with the seed: a 4000 x 3000 photo of
4 x 4 centre crops of 1000 x 750 px, not resampled, so its detail goes down to its pixels (the
other modes' photos are upscaled); the share of valid faces of at least ``--min-face`` px found, the
detections that overlap no annotated face, and ms, per mosaic.

Asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.harness.data import TRAIN_SUBSET, VALDEV
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.harness.timing import call_ms

BIG = 200  # px: the faces the sizes mode scores
FOUND_IOU = 0.5
FALSE_IOU = 0.3
KEEP_VISIBLE = 0.6
ANGLES = (0, 90, 180, 270)
#: the sizes mode's rows, in table order (the "as given" ones with ``--as-given``)
SIZE_KINDS = (
    "phone 4000",
    "phone 8000",
    "close-up",
    "as given, 4000's faces",
    "as given, 8000's faces",
    "close-up as given",
)


@dataclass
class Photo:
    """A built photo: BGR pixels, valid face boxes and ignored (invalid) boxes, both ``(N, 4)`` xyxy."""

    kind: str
    name: str
    image: np.ndarray
    faces: np.ndarray
    ignored: np.ndarray
    min_face: float | None = None  # the smallest face scored, if not the mode's (the "as given" photos)


def read_ground_truth(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per image name (``event/file``, no suffix): valid and invalid face boxes, xyxy floats."""
    lines = path.read_text().split("\n")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    i = 0
    while i < len(lines) and lines[i].strip():
        name, count = lines[i].strip(), int(lines[i + 1])
        rows = [[float(v) for v in line.split()] for line in lines[i + 2 : i + 2 + count]]
        valid = [r[:4] for r in rows if r[2] > 0 and r[3] > 0 and r[7] != 1]
        invalid = [r[:4] for r in rows if r[2] > 0 and r[3] > 0 and r[7] == 1]
        out[name.removesuffix(".jpg")] = (xyxy(valid), xyxy(invalid))
        i += 2 + max(count, 1)
    return out


def xyxy(xywh: list[list[float]]) -> np.ndarray:
    boxes = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def short_side(boxes: np.ndarray) -> np.ndarray:
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


#: ``--data``: where the photos and their ground truth are
DATA = {"val-dev": (VALDEV, "wider_face_val_bbx_gt.txt"), "train-subset": (TRAIN_SUBSET, "wider_face_train_bbx_gt.txt")}
ROOT = VALDEV  # set by main from --data


def image_shape(name: str) -> tuple[int, int]:
    """``(height, width)`` of a photo, from its header."""
    from PIL import Image

    with Image.open(ROOT / "images" / f"{name}.jpg") as image:
        return image.height, image.width


def large_face_photos(gt: dict[str, tuple[np.ndarray, np.ndarray]], large: float) -> list[str]:
    """Names of the photos with a valid face whose shorter side is >= ``large`` x the photo's long side."""
    names = []
    for name, (faces, _) in sorted(gt.items()):
        if len(faces) and short_side(faces).max() >= large * max(image_shape(name)):
            names.append(name)
    return names


def upscaled(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    factor = long_side / max(image.shape[:2])
    h, w = round(image.shape[0] * factor), round(image.shape[1] * factor)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC), factor


def close_up(
    image: np.ndarray, faces: np.ndarray, ignored: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A square crop around the largest face, upscaled to 2000-4000 px, the boxes mapped (see the
    docstring), and the upscale factor."""
    window, long_side = close_up_window(image, faces, rng)
    return cut_window(image, faces, ignored, window, long_side)


def close_up_window(image: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The draws of a close-up: its square window (xyxy; side 1.6-3x the largest face, centre jittered)
    and the long side it is upscaled to (2000-4000 px)."""
    h, w = image.shape[:2]
    face = faces[np.argmax(short_side(faces))]
    side = min(max(face[2] - face[0], face[3] - face[1]) * rng.uniform(1.6, 3.0), h, w)
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    cx, cy = cx + rng.uniform(-0.15, 0.15) * side, cy + rng.uniform(-0.15, 0.15) * side
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    s = int(side)
    return np.array([x0, y0, x0 + s, y0 + s], dtype=np.float64), int(rng.integers(2000, 4001))


def cut_window(
    image: np.ndarray, faces: np.ndarray, ignored: np.ndarray, window: np.ndarray, long_side: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``window`` of ``image``, upscaled to ``long_side`` (None: as it is), its faces (those with at
    least ``KEEP_VISIBLE`` inside), its ignored boxes (with the faces it cuts) and the factor."""
    x0, y0, x1, y1 = window.astype(int)
    crop = image[y0:y1, x0:x1]
    out, factor = upscaled(crop, long_side) if long_side else (crop, 1.0)
    kept, cut = window_boxes(faces, window, factor=factor)
    kept_ignored, cut_ignored = window_boxes(ignored, window, factor=factor)
    return out, kept, np.concatenate([kept_ignored, cut, cut_ignored]), factor


def window_boxes(
    boxes: np.ndarray, window: np.ndarray, origin: tuple[float, float] = (0.0, 0.0), factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``boxes`` clipped to ``window`` (xyxy, in their image), in the pixels of a photo made of that
    window scaled by ``factor`` with its top-left at ``origin``: those with at least ``KEEP_VISIBLE``
    of their box inside, and those with some of it inside but less."""
    clipped = np.concatenate([np.maximum(boxes[:, :2], window[:2]), np.minimum(boxes[:, 2:], window[2:])], 1)
    area = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), 1)
    visible = area / np.maximum(np.prod(boxes[:, 2:] - boxes[:, :2], 1), 1e-9)
    moved = (clipped - np.tile(window[:2], 2)) * factor + np.tile(origin, 2)
    return moved[visible >= KEEP_VISIBLE], moved[(visible > 0) & (visible < KEEP_VISIBLE)]


def size_photos(names: list[str], gt: dict, seed: int, as_given: bool = False) -> Iterator[Photo]:
    """Phone 4000, phone 8000 and close-up photos of each name, built one at a time; with ``as_given``
    also the photo and the close-up's crop at their own size, scoring the faces that are at least
    ``BIG`` px in the phone 4000 / 8000 photo and in the close-up (the same faces, not upscaled)."""
    rng = np.random.default_rng(seed)
    for name in names:
        image = cv2.imread(str(ROOT / "images" / f"{name}.jpg"))
        faces, ignored = gt[name]
        for side in (4000, 8000):
            big, factor = upscaled(image, side)
            yield Photo(f"phone {side}", name, big, faces * factor, ignored * factor)
            del big
            if as_given:
                yield Photo(f"as given, {side}'s faces", name, image, faces, ignored, BIG / factor)
        window, long_side = close_up_window(image, faces, rng)
        crop, kept, cut, factor = cut_window(image, faces, ignored, window, long_side)
        yield Photo("close-up", name, crop, kept, cut)
        if as_given:  # the same window, not upscaled
            native, kept, cut, _ = cut_window(image, faces, ignored, window)
            yield Photo("close-up as given", name, native, kept, cut, BIG / factor)


def rotated_photos(names: list[str], gt: dict) -> Iterator[Photo]:
    """Each photo at 0, 90, 180 and 270 degrees clockwise, with its boxes rotated."""
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    for name in names:
        image = cv2.imread(str(ROOT / "images" / f"{name}.jpg"))
        faces, ignored = gt[name]
        h, w = image.shape[:2]
        for angle in ANGLES:
            out = image if angle == 0 else cv2.rotate(image, codes[angle])
            yield Photo(f"{angle}", name, out, rotate_boxes(faces, angle, h, w), rotate_boxes(ignored, angle, h, w))


def mosaic(photos: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[np.ndarray, tuple[int, int]]]]:
    """A 4000 x 3000 photo with detail down to its pixels: 4 x 4 centre crops of 1000 x 750 px of up to
    16 ``photos``, not resampled; per photo, its crop window (xyxy in it) and where that lands (x, y)."""
    image = np.zeros((3000, 4000, 3), np.uint8)
    cells = []
    for i, photo in enumerate(photos[:16]):
        h, w = photo.shape[:2]
        y0, x0 = max(0, (h - 750) // 2), max(0, (w - 1000) // 2)
        crop = photo[y0 : y0 + 750, x0 : x0 + 1000]
        cy, cx = i // 4 * 750, i % 4 * 1000
        image[cy : cy + crop.shape[0], cx : cx + crop.shape[1]] = crop
        cells.append((np.array([x0, y0, x0 + crop.shape[1], y0 + crop.shape[0]], dtype=np.float64), (cx, cy)))
    return image, cells


def sharp_photos(names: list[str], gt: dict, count: int) -> Iterator[Photo]:
    """``count`` sharp 12 MP photos: :func:`mosaic` of 16 photos each, with their boxes (a face with less
    than 60 % of its box in the crop is ignored)."""
    for g in range(count):
        group = names[16 * g : 16 * g + 16]
        image, cells = mosaic([cv2.imread(str(ROOT / "images" / f"{name}.jpg")) for name in group])
        faces, ignored = [np.zeros((0, 4))], [np.zeros((0, 4))]
        for name, (window, origin) in zip(group, cells, strict=True):
            valid, invalid = gt[name]
            kept, cut = window_boxes(valid, window, origin)
            faces.append(kept)
            ignored.extend([cut, *window_boxes(invalid, window, origin)])
        yield Photo("sharp 4000", f"mosaic {g}", image, np.concatenate(faces), np.concatenate(ignored))


def rotate_boxes(boxes: np.ndarray, angle: int, h: int, w: int) -> np.ndarray:
    """xyxy boxes of an ``h`` x ``w`` image in the image rotated clockwise by ``angle`` degrees."""
    x0, y0, x1, y1 = boxes.T
    if angle == 90:
        return np.stack([h - y1, x0, h - y0, x1], 1)
    if angle == 180:
        return np.stack([w - x1, h - y1, w - x0, h - y0], 1)
    if angle == 270:
        return np.stack([y0, w - x1, y1, w - x0], 1)
    return boxes.copy()


def parse_options(text: str) -> dict[str, Any]:
    """``"max_side=1280 scales=(500,800)"`` as Detector keyword arguments (values as Python literals)."""
    options: dict[str, Any] = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--detector {text!r}: expected key=value pairs, got {item!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value  # a bare word: a string option (backend=openvino)
    return options


@dataclass
class Config:
    """One detector configuration and what it measured."""

    label: str
    detector: Any
    anonymiser: Any = None
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, kind: str, **values: float) -> None:
        bucket = self.scores.setdefault(kind, {})
        for key, value in values.items():
            bucket.setdefault(key, []).append(value)


def build_configs(texts: list[str], anonymise_threshold: float | None) -> list[Config]:
    from retinakit import Detector

    configs = []
    for text in texts or [""]:
        options = parse_options(text)
        label = f"Detector({', '.join(f'{k}={v!r}' for k, v in options.items())})"
        rule = {key.removeprefix("auto."): options.pop(key) for key in list(options) if key.startswith("auto.")}
        try:
            detector = with_rule(Detector(**options), rule)
            anonymiser = None
            if anonymise_threshold is not None:
                anonymiser = with_rule(Detector(**{**options, "score_threshold": anonymise_threshold}), rule)
        except (TypeError, ValueError) as exc:
            raise SystemExit(f"--detector {text!r}: {exc}") from None
        warm = np.full((480, 640, 3), 128, np.uint8)  # sessions and buffers start outside the timed calls
        for det in (detector, anonymiser):
            if det is not None:
                det.detect_bgr([warm])
        configs.append(Config(label, detector, anonymiser))
    return configs


def with_rule(detector: Any, rule: dict[str, Any]) -> Any:
    """``detector`` with the ``auto`` rule's sizes replaced (``auto.KEY=VALUE``: a ScaleConfig field).

    For trying rules on the training subset: the detector keeps the rule in a private attribute, from
    which it derives the rest (the coarser passes' threshold).
    """
    if not rule:
        return detector
    from retinakit.inference.scales import ScaleConfig

    detector._scales = ScaleConfig(**rule)
    return detector


def hidden_share(faces: np.ndarray, detected: np.ndarray, height: int, width: int) -> list[float]:
    """Per face, the share of its box's pixels that the anonymisation mask of ``detected`` hides."""
    from retinakit.ops.masks import hide_mask

    mask = hide_mask(detected, height, width)
    shares = []
    for box in faces:
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        window = mask[y0:y1, x0:x1]
        shares.append(float(window.mean()) if window.size else 0.0)
    return shares


def score_photo(config: Config, photo: Photo, min_face: int = BIG) -> None:
    """Detect on one built photo and keep its figures: found (faces of at least ``min_face``), false,
    ms, and with an anonymiser the share of each such face hidden."""
    holder: list[Any] = []
    ms = call_ms(lambda: holder.append(config.detector.detect_bgr([photo.image])[0]))
    boxes = np.asarray(holder[0].boxes, dtype=np.float64).reshape(-1, 4)
    big = photo.faces[short_side(photo.faces) >= (min_face if photo.min_face is None else photo.min_face)]
    found = (iou(big, boxes).max(1) >= FOUND_IOU) if len(boxes) else np.zeros(len(big), bool)
    annotated = np.concatenate([photo.faces, photo.ignored])
    false = int((iou(boxes, annotated).max(1) < FALSE_IOU).sum()) if len(annotated) else len(boxes)
    config.add(photo.kind, ms=ms, false=false, found=found.sum(), big=len(big))
    if config.anonymiser is not None and len(big):
        anon = np.asarray(config.anonymiser.detect_bgr([photo.image])[0].boxes, dtype=np.float64).reshape(-1, 4)
        for share in hidden_share(big, anon, *photo.image.shape[:2]):
            config.add(photo.kind, hidden=share)


def sharp_table(configs: list[Config], n: int, min_face: int) -> Table:
    table = Table(
        f"{n} sharp 12 MP mosaics of {ROOT.name} crops (16 photos each): faces >= {min_face} px",
        ["config", f"faces >= {min_face}", "found %", "false / mosaic", "ms / mosaic"],
        note=f"found: IoU >= {FOUND_IOU}; false: IoU < {FALSE_IOU} with every annotated face (valid or invalid)",
    )
    for c in configs:
        s = c.scores.get("sharp 4000", {})
        big = sum(s.get("big", []))
        found = 100 * sum(s.get("found", [])) / big if big else float("nan")
        table.add(c.label, int(big), found, mean(s.get("false", [])), mean(s.get("ms", [])))
    return table


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def sizes_table(configs: list[Config], n: int, anonymise: bool) -> Table:
    table = Table(
        f"{n} {ROOT.name} photos with a large face, built as phone photos and close-ups: faces >= {BIG} px",
        ["photos", "config", "faces >= 200", "found %", "false / photo", "ms / photo", "anonymise %"],
        note=f"found: IoU >= {FOUND_IOU}; false: IoU < {FALSE_IOU} with every annotated face (valid or invalid); "
        "anonymise: mean share of each big face's box hidden at the anonymisation threshold",
    )
    for kind in SIZE_KINDS:
        for c in configs:
            if kind not in c.scores:  # the "as given" rows without --as-given
                continue
            s = c.scores[kind]
            big = sum(s.get("big", []))
            found = 100 * sum(s.get("found", [])) / big if big else float("nan")
            hidden = 100 * mean(s.get("hidden", [])) if anonymise else float("nan")
            false, ms = mean(s.get("false", [])), mean(s.get("ms", []))
            table.add(f"{kind} ({len(s.get('ms', []))})", c.label, int(big), found, false, ms, hidden)
    return table


def rotated_table(configs: list[Config], n: int, min_face: int) -> Table:
    columns = ["config", *[f"{a} deg recall %" for a in ANGLES], "faces", "ms / photo"]
    table = Table(f"{n} {ROOT.name} photos rotated clockwise: recall of faces >= {min_face} px (IoU >= 0.5)", columns)
    for c in configs:
        recalls = []
        for angle in ANGLES:
            s = c.scores.get(str(angle), {})
            big = sum(s.get("big", []))
            recalls.append(100 * sum(s.get("found", [])) / big if big else float("nan"))
        faces = int(sum(c.scores.get("0", {}).get("big", [])))
        table.add(c.label, *recalls, faces, mean([m for s in c.scores.values() for m in s.get("ms", [])]))
    return table


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("sizes", "rotated", "sharp"), default="sizes")
    parser.add_argument("--detector", action="append", default=[], metavar="'KEY=VALUE ...'")
    parser.add_argument("--data", choices=tuple(DATA), default="val-dev", help="whose photos (tune on train-subset)")
    parser.add_argument("--photos", type=int, default=40, help="photos to build from (sharp: mosaics)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large", type=float, default=0.10, help="sizes: large face / photo long side")
    parser.add_argument("--min-face", type=int, default=40, help="rotated, sharp: smallest face scored (px)")
    parser.add_argument("--anonymise-threshold", type=float, help="default: the anonymise app's threshold")
    parser.add_argument("--no-anonymise", action="store_true", help="sizes: skip the anonymise column")
    parser.add_argument(
        "--as-given",
        action="store_true",
        help="sizes: also each photo and close-up crop at its own size (the same faces): the model's own figures",
    )
    add_json_argument(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    global ROOT
    args = parse(argv)
    ROOT, gt_name = DATA[args.data]
    gt_path = ROOT / gt_name
    if not gt_path.is_file():
        raise SystemExit(f"{gt_path}: not found (the {args.data} data is needed)")
    gt = read_ground_truth(gt_path)
    rng = np.random.default_rng(args.seed)
    title = {
        "sizes": "Faces of every size: phone photos and close-ups",
        "rotated": "Rotated photos",
        "sharp": "Sharp 12 MP photos",
    }[args.mode]
    record = Record(f"scale/photo_sizes/{args.mode}", title, sys.argv[1:] if argv is None else argv)
    if args.mode == "sizes":
        from retinakit.apps.anonymize import DEFAULT_THRESHOLD

        pool = large_face_photos(gt, args.large)
        names = sorted(rng.choice(pool, size=min(args.photos, len(pool)), replace=False).tolist())
        threshold = None if args.no_anonymise else (args.anonymise_threshold or DEFAULT_THRESHOLD)
        configs = build_configs(args.detector, threshold)
        record.note(f"{len(names)} of {len(pool)} photos with a large face (seed {args.seed}): {', '.join(names)}")
        record.note(
            "built from each: the photo upscaled (bicubic) to a 4000 and an 8000 px long side, and a square crop "
            "around its largest face (1.6-3x the face) upscaled to 2000-4000 px; a face's size is the shorter "
            "side of its box in the built photo; ms: Detector.detect_bgr on the decoded photo, "
            "after one warm-up call on a 640x480 image"
        )
        for photo in size_photos(names, gt, args.seed, args.as_given):
            for c in configs:
                score_photo(c, photo)
        record.table(sizes_table(configs, len(names), not args.no_anonymise))
    elif args.mode == "sharp":
        count = min(args.photos, len(gt) // 16)
        names = rng.permutation(sorted(gt))[: 16 * count].tolist()
        record.note(f"{count} mosaics of 16 {args.data} photos each, drawn with seed {args.seed}")
        configs = build_configs(args.detector, None)
        for photo in sharp_photos(names, gt, count):
            for c in configs:
                score_photo(c, photo, args.min_face)
        record.table(sharp_table(configs, count, args.min_face))
    else:
        names = sorted(rng.choice(sorted(gt), size=min(args.photos, len(gt)), replace=False).tolist())
        record.note(f"{len(names)} {args.data} photos drawn with seed {args.seed}; rotations clockwise, boxes rotated")
        configs = build_configs(args.detector, None)
        for photo in rotated_photos(names, gt):
            for c in configs:
                score_photo(c, photo, args.min_face)
        record.table(rotated_table(configs, len(names), args.min_face))
    record.write(args.json)


if __name__ == "__main__":
    main()
