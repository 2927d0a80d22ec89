"""Running a detector over a WIDER-style image tree and evaluating it (``retinakit evaluate``)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.core.images import read_image
from retinakit.detector import Detector
from retinakit.errors import EvaluationError
from retinakit.evaluation.nme import LandmarkGroundTruth, LandmarkResult, face_nme, summarize_nme
from retinakit.evaluation.protocols import Protocol, get_protocol
from retinakit.evaluation.wider import (
    WiderGroundTruth,
    WiderResult,
    evaluate_wider,
    ground_truth_from_labels,
    label_key,
    read_image_list,
    read_submission,
)
from retinakit.io.batching import Progress, no_progress, prefetch
from retinakit.io.formats import to_wider_rows, write_wider_file
from retinakit.io.labels import LabelOptions, LabelSet, read_labels


@dataclass(frozen=True)
class EvaluationReport:
    """Result of :func:`evaluate`: the WIDER figures plus how they were obtained."""

    result: WiderResult
    protocol: Protocol | None
    seconds_per_image: float | None
    failed_images: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": None if self.protocol is None else self.protocol.to_dict(),
            "seconds_per_image": self.seconds_per_image,
            "failed_images": self.failed_images,
            **self.result.to_dict(),
        }


def run_detector_on_wider(
    detector: Detector,
    images_dir: str | os.PathLike,
    keys: list[str],
    predictions_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
) -> tuple[dict[str, np.ndarray], dict[str, str], float]:
    """Detect on ``images_dir/<key>.jpg`` for every key; write submission files if ``predictions_dir``.

    Returns the predictions, the images that failed (key -> reason) and seconds per image.
    """
    images_dir = Path(images_dir)
    predictions: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    start = time.perf_counter()
    for outcome in detector.stream(progress(keys, len(keys)), lambda k: read_image(images_dir / f"{k}.jpg")):
        key = outcome.item
        if outcome.error is not None or outcome.faces is None:
            failed[key] = str(outcome.error)
            continue
        rows = to_wider_rows(outcome.faces)
        if predictions_dir is not None:
            write_wider_file(predictions_dir, key, rows)
        predictions[key] = rows
    elapsed = time.perf_counter() - start
    return predictions, failed, elapsed / max(len(keys), 1)


def wider_ap(
    detector: Detector,
    images: str | os.PathLike,
    ground_truth: str | os.PathLike,
    subset: str | os.PathLike | None = None,
    progress: Progress = no_progress,
) -> WiderResult:
    """Official-protocol AP of ``detector`` on the images of ``ground_truth`` (or ``subset``), in memory."""
    gt = WiderGroundTruth.from_mat_dir(ground_truth, read_image_list(subset) if subset else None)
    predictions, _, _ = run_detector_on_wider(detector, images, list(gt.images), None, progress)
    return evaluate_wider(predictions, gt)


def evaluate(
    ground_truth: str | os.PathLike,
    images: str | os.PathLike | None = None,
    subset: str | os.PathLike | None = None,
    protocol: str = "original",
    predictions: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    detector_options: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> EvaluationReport:
    """WIDER FACE evaluation with the official protocol.

    With ``images``: run the detector (``protocol`` preset plus ``detector_options``) over every
    image of the ground truth (or of the ``subset`` list) and write submission files to
    ``output/predictions``. Without: evaluate the existing submission files in ``predictions``.
    Figures go to ``output/wider_results.json`` and curves to ``output/pr_curves.png`` when
    ``output`` is given. Nothing to evaluate (a missing image folder, no readable image, no
    submission file for any image) raises before any result file is written.
    """
    keys = read_image_list(subset) if subset else None
    gt = WiderGroundTruth.from_mat_dir(ground_truth, keys)
    keys = list(gt.images)
    out = Path(output) if output is not None else None
    files: dict[str, str] = {}
    failed: dict[str, str] = {}
    seconds = None
    chosen: Protocol | None = None
    if images is not None:
        if not Path(images).is_dir():
            raise FileNotFoundError(f"{images}: image folder not found")
        chosen = get_protocol(protocol)
        detector = Detector(chosen.detector_config(**(detector_options or {})))
        pred_dir = Path(predictions) if predictions is not None else (out or Path(".")) / "predictions"
        preds, failed, seconds = run_detector_on_wider(detector, images, keys, pred_dir, progress)
        files["predictions"] = str(pred_dir)
        if not preds:
            example = next(iter(failed.values()), "")
            raise EvaluationError(f"none of the {len(keys)} images under {images} could be read, e.g. {example}")
    elif predictions is not None:
        preds = read_submission(predictions, keys)
        if not preds:
            raise EvaluationError(
                f"{predictions}: no submission file for any of the {len(keys)} images (expected event/name.txt files)"
            )
    else:
        raise ValueError("give images to run the detector on, or a predictions directory to evaluate")
    result = evaluate_wider(preds, gt)
    report = EvaluationReport(result, chosen, seconds, failed, files)
    if out is not None:
        title = f"WIDER FACE ({result.num_images} images, protocol {protocol if images else 'files'})"
        write_report(report, out, title)
    return report


def write_report(report: EvaluationReport, out: Path, title: str) -> None:
    """``out/wider_results.json`` and ``out/pr_curves.png`` (skipped without matplotlib); adds them to ``files``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "wider_results.json").write_text(json.dumps(report.to_dict(), indent=1))
    report.files["json"] = str(out / "wider_results.json")
    try:
        from retinakit.evaluation.plots import plot_pr_curves

        plot_pr_curves(report.result, out / "pr_curves.png", title=title)
        report.files["plot"] = str(out / "pr_curves.png")
    except ImportError:
        report.files["plot"] = "skipped: matplotlib is not installed"


def run_detector_on_labels(
    detector: Detector, labels: LabelSet, progress: Progress = no_progress
) -> tuple[dict[str, np.ndarray], dict[str, str], float]:
    """Detect on every image of a label set (through :meth:`Detector.stream`); predictions keyed
    like :func:`~retinakit.evaluation.wider.ground_truth_from_labels`, failures, seconds per image."""
    names = [a.image for a in labels.images]
    predictions: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    start = time.perf_counter()
    outcomes = detector.stream(names, lambda n: read_image(labels.root / n))
    for outcome in progress(outcomes, len(names)):
        if outcome.ok:
            predictions[label_key(outcome.item)] = to_wider_rows(outcome.faces)
        else:
            failed[outcome.item] = outcome.reason
    return predictions, failed, (time.perf_counter() - start) / max(len(names), 1)


def labels_ap(detector: Detector, labels: LabelSet, progress: Progress = no_progress) -> WiderResult:
    """AP (IoU 0.5 and 0.5:0.95, setting ``all``) of ``detector`` on one's own labels, in memory."""
    predictions, _, _ = run_detector_on_labels(detector, labels, progress)
    return evaluate_wider(predictions, ground_truth_from_labels(labels.images))


def evaluate_labels(
    ground_truth: str | os.PathLike,
    options: LabelOptions | None = None,
    protocol: str = "original",
    output: str | os.PathLike | None = None,
    detector_options: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> EvaluationReport:
    """Evaluation against one's own ground truth (COCO, YOLO, ``label.txt``, WIDER ``bbx_gt``).

    The WIDER computation with a single setting ``all`` (see
    :func:`~retinakit.evaluation.wider.ground_truth_from_labels`): every labelled face counts, crowd
    regions are ignored, "+1" IoU, VOC AP at IoU 0.5 and averaged over 0.50:0.05:0.95.
    """
    labels = read_labels(ground_truth, options or LabelOptions(split="val"))
    chosen = get_protocol(protocol)
    detector = Detector(chosen.detector_config(**(detector_options or {})))
    predictions, failed, seconds = run_detector_on_labels(detector, labels, progress)
    if not predictions:
        example = next(iter(failed.values()), "no images")
        raise EvaluationError(f"{ground_truth}: none of the {len(labels.images)} images could be read, e.g. {example}")
    result = evaluate_wider(predictions, ground_truth_from_labels(labels.images))
    report = EvaluationReport(result, chosen, seconds, failed)
    if output is not None:
        write_report(report, Path(output), f"{Path(ground_truth).name} ({result.num_images} images, {labels.format})")
    return report


def load_landmark_truth(labels: LabelSet) -> dict[str, LandmarkGroundTruth]:
    """Faces with all five landmarks of a label set (any format), keyed by image path."""
    out = {}
    for ann in labels.images:
        has = ann.has_landmarks
        if has.any():
            out[ann.image] = LandmarkGroundTruth(ann.boxes[has], ann.landmarks[has])
    return out


def evaluate_landmarks(
    labels_path: str | os.PathLike,
    images: str | os.PathLike | None = None,
    detector_options: dict[str, Any] | None = None,
    progress: Progress = no_progress,
    label_options: LabelOptions | None = None,
) -> LandmarkResult:
    """Landmark NME of the detector on every face with five landmarks in a label set (any format)."""
    from dataclasses import replace

    label_options = label_options or LabelOptions()
    if images is not None:
        label_options = replace(label_options, images=str(images))
    labels = read_labels(labels_path, label_options)
    truth = load_landmark_truth(labels)
    options = {"score_threshold": 0.02, **(detector_options or {})}
    detector = Detector(**options)
    images = labels.root
    nmes = []
    for name, image in progress(prefetch(lambda n: read_image(images / n), list(truth)), len(truth)):
        if isinstance(image, BaseException):
            raise image
        nmes.append(face_nme(detector.detect_bgr([image])[0], truth[name]))
    return summarize_nme(np.concatenate(nmes) if nmes else np.zeros(0))
