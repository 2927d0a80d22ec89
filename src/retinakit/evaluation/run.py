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
    read_image_list,
    read_submission,
)
from retinakit.io.batching import Progress, no_progress, prefetch
from retinakit.io.formats import to_wider_rows, write_wider_file


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
        out.mkdir(parents=True, exist_ok=True)
        (out / "wider_results.json").write_text(json.dumps(report.to_dict(), indent=1))
        files["json"] = str(out / "wider_results.json")
        try:
            from retinakit.evaluation.plots import plot_pr_curves

            title = f"WIDER FACE ({result.num_images} images, protocol {protocol if images else 'files'})"
            plot_pr_curves(result, out / "pr_curves.png", title=title)
            files["plot"] = str(out / "pr_curves.png")
        except ImportError:
            files["plot"] = "skipped: matplotlib is not installed"
    return report


def load_landmark_truth(label_txt: str | os.PathLike) -> dict[str, LandmarkGroundTruth]:
    """Faces with all five landmarks from a RetinaFace ``label.txt``, keyed by image path."""
    from retinakit.io.annotations import parse_label_txt

    out = {}
    for ann in parse_label_txt(label_txt):
        has = ann.has_landmarks
        if has.any():
            out[ann.image] = LandmarkGroundTruth(ann.boxes[has], ann.landmarks[has])
    return out


def evaluate_landmarks(
    label_txt: str | os.PathLike,
    images: str | os.PathLike,
    detector_options: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> LandmarkResult:
    """Landmark NME of the detector on every face with landmark ground truth in ``label_txt``."""
    truth = load_landmark_truth(label_txt)
    options = {"score_threshold": 0.02, **(detector_options or {})}
    detector = Detector(**options)
    images = Path(images)
    nmes = []
    for name, image in progress(prefetch(lambda n: read_image(images / n), list(truth)), len(truth)):
        if isinstance(image, BaseException):
            raise image
        nmes.append(face_nme(detector.detect_bgr([image])[0], truth[name]))
    return summarize_nme(np.concatenate(nmes) if nmes else np.zeros(0))
