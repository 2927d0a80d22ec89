"""The official WIDER FACE evaluation protocol in numpy (no Cython), restricted to any image subset.

Follows the official MATLAB code and its public python port exactly:

- ground truth from ``wider_face_val.mat`` and the ``wider_{easy,medium,hard}_val.mat`` keep lists;
  a prediction whose best-overlapping ground-truth box is *not* in the keep list (IoU >= threshold)
  is ignored: neither a true nor a false positive;
- the "+1 pixel" IoU convention of the official code (widths are ``x2 - x1 + 1``);
- scores min-max normalised over the whole prediction set; 1,000 thresholds ``1 - (t + 1) / 1000``;
- predictions of an image are taken in file order, which must be highest score first;
- VOC-style AP (area under the interpolated precision envelope).

Also the WIDER Face Challenge 2018 figure the paper reports: AP averaged over IoU 0.50:0.05:0.95.
Library functions return numbers; they print nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.core.boxes import box_convert
from retinakit.errors import AnnotationError
from retinakit.io.formats import read_wider_file
from retinakit.io.text import read_lines

SETTINGS = ("easy", "medium", "hard")
THRESHOLDS = 1000
IOU_50_95 = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass(frozen=True)
class WiderImage:
    """Ground truth of one image: boxes ``(M, 4)`` x, y, w, h and a keep mask per setting."""

    boxes: np.ndarray
    keep: Mapping[str, np.ndarray]  # setting -> (M,) bool


@dataclass(frozen=True)
class WiderGroundTruth:
    """Official ground truth, keyed ``"event/name"`` (no extension), in the official image order.

    ``settings``: the keep masks each image has (WIDER's easy/medium/hard; ``("all",)`` for one's
    own labels, see :func:`from_labels`)."""

    images: dict[str, WiderImage]
    settings: tuple[str, ...] = SETTINGS

    @staticmethod
    def from_mat_dir(directory: str | os.PathLike, subset: Iterable[str] | None = None) -> WiderGroundTruth:
        """Load the four official ``.mat`` files; keep only ``subset`` keys (``event/name[.jpg]``) if given."""
        from scipy.io import loadmat

        directory = Path(directory)
        paths = {"all": directory / "wider_face_val.mat"}
        paths.update({s: directory / f"wider_{s}_val.mat" for s in SETTINGS})
        for p in paths.values():
            if not p.is_file():
                raise FileNotFoundError(f"{p}: official WIDER FACE ground-truth file not found")
        full = _load_mat(loadmat, paths["all"], ("event_list", "file_list", "face_bbx_list"))
        lists = {s: _load_mat(loadmat, paths[s], ("gt_list",))["gt_list"] for s in SETTINGS}
        wanted = None if subset is None else {_key(s) for s in subset}
        images: dict[str, WiderImage] = {}
        for i, event in enumerate(full["event_list"][:, 0]):
            event_name = str(event[0])
            files = full["file_list"][i, 0][:, 0]
            boxes = full["face_bbx_list"][i, 0][:, 0]
            for j, name in enumerate(files):
                key = f"{event_name}/{name[0]}"
                if wanted is not None and key not in wanted:
                    continue
                gt = boxes[j].astype(np.float64).reshape(-1, 4)
                keep = {}
                for s in SETTINGS:
                    mask = np.zeros(len(gt), dtype=bool)
                    idx = lists[s][i, 0][j, 0].reshape(-1).astype(np.int64)
                    mask[idx - 1] = True
                    keep[s] = mask
                images[key] = WiderImage(gt, keep)
        if wanted is not None:
            missing = wanted - set(images)
            if missing:
                raise KeyError(f"{len(missing)} subset images are not in the ground truth, e.g. {sorted(missing)[0]}")
        return WiderGroundTruth(images)


def ground_truth_from_labels(images: Iterable[Any]) -> WiderGroundTruth:
    """One's own labels (:class:`~retinakit.io.labels.ImageAnnotation` records) as ground truth with
    one setting, ``all``: every face counts; crowd regions (COCO ``iscrowd``) are ignored the way
    WIDER ignores faces outside a setting. Keys are the image paths without their extension."""
    out: dict[str, WiderImage] = {}
    for ann in images:
        boxes = np.concatenate([ann.boxes, ann.ignore]).astype(np.float64)
        keep = np.arange(len(boxes)) < len(ann.boxes)
        out[label_key(ann.image)] = WiderImage(box_convert(boxes, "xyxy", "xywh"), {"all": keep})
    return WiderGroundTruth(out, ("all",))


def label_key(image: str) -> str:
    """The prediction key of a label set's image path: the path without its extension."""
    return str(Path(image).with_suffix("").as_posix())


def _load_mat(loadmat: Any, path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """``scipy.io.loadmat(path)`` with the variables ``keys``; a corrupt or foreign file raises
    :class:`~retinakit.errors.AnnotationError` naming it."""
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError ... for corrupt files
        raise AnnotationError(f"{path}: not a readable WIDER FACE ground-truth .mat file ({exc})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise AnnotationError(f"{path}: not a WIDER FACE ground-truth file (no variable {', '.join(missing)})")
    return mat


def _key(name: str) -> str:
    """``event/name`` from ``event/name.jpg`` or a longer path ending in ``event/name.jpg``."""
    parts = Path(name.strip()).with_suffix("").parts
    return "/".join(parts[-2:])


def read_image_list(path: str | os.PathLike) -> list[str]:
    """Image keys ``event/name`` of a list file with one ``event/name.jpg`` per line.

    A binary or unreadable file raises :class:`~retinakit.errors.AnnotationError` naming it.
    """
    return [_key(line) for line in read_lines(path) if line.strip()]


# ---------------------------------------------------------------------------- submission format


def read_submission(directory: str | os.PathLike, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """All ``event/name.txt`` files under ``directory`` (or just ``keys``), keyed ``event/name``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: predictions directory not found")
    if keys is None:
        files = sorted(directory.glob("*/*.txt"))
        return {f"{f.parent.name}/{f.stem}": read_wider_file(f) for f in files}
    out = {}
    for key in keys:
        f = directory / f"{key}.txt"
        if f.is_file():
            out[key] = read_wider_file(f)
    return out


# ---------------------------------------------------------------------------- protocol


def overlaps_plus_one(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU ``(P, M)`` of xyxy boxes with the official "+1" convention (the Cython ``bbox_overlaps``)."""
    iw = np.minimum(pred[:, None, 2], gt[None, :, 2]) - np.maximum(pred[:, None, 0], gt[None, :, 0]) + 1
    ih = np.minimum(pred[:, None, 3], gt[None, :, 3]) - np.maximum(pred[:, None, 1], gt[None, :, 1]) + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_p = (pred[:, 2] - pred[:, 0] + 1) * (pred[:, 3] - pred[:, 1] + 1)
    area_g = (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)
    union = area_p[:, None] + area_g[None, :] - inter
    return np.where(inter > 0, inter / np.where(inter > 0, union, 1.0), 0.0)


def image_pr(
    pred: np.ndarray, overlaps: np.ndarray, keep: np.ndarray, iou_threshold: float, thresholds: np.ndarray
) -> np.ndarray:
    """``(T, 2)`` [proposals counted, kept faces recalled] of one image at each score threshold.

    ``pred``: ``(P, 5)`` rows in file order with normalised scores; ``overlaps``: ``(P, M)``.
    """
    best = overlaps.argmax(axis=1)
    hit = overlaps[np.arange(len(pred)), best] >= iou_threshold
    kept = keep[best]
    proposal_counts = ~(hit & ~kept)  # a hit on an ignored face is not a proposal
    recalled = hit & kept
    first = np.zeros(len(pred), dtype=bool)
    hits = np.flatnonzero(recalled)
    _, first_pos = np.unique(best[hits], return_index=True)
    first[hits[first_pos]] = True
    pred_recall = np.cumsum(first)
    cum_props = np.cumsum(proposal_counts)
    # Official: index of the *last* prediction with score >= t (file order); via a suffix max.
    suffix_max = np.maximum.accumulate(pred[::-1, 4])[::-1]
    counts = np.searchsorted(-suffix_max, -thresholds, side="right")
    last = np.maximum(counts - 1, 0)
    info = np.stack([cum_props[last], pred_recall[last]], axis=1).astype(np.float64)
    info[counts == 0] = 0
    return info


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC style), as the official code."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass(frozen=True)
class WiderResult:
    """WIDER FACE figures: ``ap`` at IoU 0.5 and ``ap_50_95`` per setting (fractions, not %)."""

    ap: dict[str, float]
    ap_50_95: dict[str, float]
    curves: dict[str, dict[str, list[float]]] = field(repr=False)  # setting -> precision/recall at 0.5
    num_images: int = 0
    num_faces: dict[str, int] = field(default_factory=dict)
    images_without_predictions: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "ap": self.ap,
            "ap_50_95": self.ap_50_95,
            "num_images": self.num_images,
            "num_faces": self.num_faces,
            "images_without_predictions": self.images_without_predictions,
            "curves": self.curves,
        }


def evaluate_wider(
    predictions: Mapping[str, np.ndarray],
    ground_truth: WiderGroundTruth,
    iou_thresholds: Iterable[float] = IOU_50_95,
) -> WiderResult:
    """Official-protocol AP of ``predictions`` (``event/name`` -> ``(P, 5)`` x, y, w, h, score rows).

    Only the images of ``ground_truth`` count; an image absent from ``predictions`` has none.
    """
    keys = list(ground_truth.images)
    preds = {k: np.asarray(predictions.get(k, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5) for k in keys}
    all_scores = np.concatenate([p[:, 4] for p in preds.values()]) if preds else np.zeros(0)
    if all_scores.size:
        lo, hi = all_scores.min(), all_scores.max()
        span = hi - lo
        for k, p in preds.items():
            p = p.copy()
            p[:, 4] = (p[:, 4] - lo) / span if span > 0 else 1.0
            preds[k] = p
    thresholds = 1 - (np.arange(THRESHOLDS) + 1) / THRESHOLDS
    ious = sorted(set(iou_thresholds) | {0.5})
    settings = ground_truth.settings
    pr = {(s, t): np.zeros((THRESHOLDS, 2)) for s in settings for t in ious}
    faces = dict.fromkeys(settings, 0)
    for key in keys:
        gt = ground_truth.images[key]
        for s in settings:
            faces[s] += int(gt.keep[s].sum())
        pred = preds[key]
        if len(gt.boxes) == 0 or len(pred) == 0:
            continue
        p_xyxy = box_convert(pred[:, :4], "xywh", "xyxy")
        g_xyxy = box_convert(gt.boxes, "xywh", "xyxy")
        overlaps = overlaps_plus_one(p_xyxy, g_xyxy)
        for s in settings:
            for t in ious:
                pr[(s, t)] += image_pr(pred, overlaps, gt.keep[s], t, thresholds)
    ap: dict[str, dict[float, float]] = {s: {} for s in settings}
    curves: dict[str, dict[str, list[float]]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for (s, t), info in pr.items():
            precision = info[:, 1] / info[:, 0]
            recall = info[:, 1] / max(faces[s], 1)
            ap[s][t] = voc_ap(recall, precision)
            if t == 0.5:
                curves[s] = {"precision": np.nan_to_num(precision).tolist(), "recall": recall.tolist()}
    iou_list = list(iou_thresholds)
    return WiderResult(
        ap={s: ap[s][0.5] for s in settings},
        ap_50_95={s: float(np.mean([ap[s][t] for t in iou_list])) for s in settings},
        curves=curves,
        num_images=len(keys),
        num_faces=faces,
        images_without_predictions=sum(1 for k in keys if k not in predictions),
    )
