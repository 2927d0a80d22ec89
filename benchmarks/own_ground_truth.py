"""WIDER FACE AP versus the same val-dev ground truth read as one's own labels (COCO / bbx_gt).

    python benchmarks/own_ground_truth.py

Scores the reference predictions of val-dev (no detector run) against: the official protocol;
each setting written as COCO (the setting's faces as faces, the others as ``iscrowd`` regions)
and read back; and ``wider_face_val_bbx_gt.txt`` read as labels (no ignore sets). Prints AP %.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from retinakit.core.boxes import box_convert
from retinakit.evaluation.wider import (
    SETTINGS,
    WiderGroundTruth,
    evaluate_wider,
    ground_truth_from_labels,
    read_image_list,
    read_submission,
)
from retinakit.io.labels import ImageAnnotation, LabelOptions, LabelSet, read_labels, write_labels

WIDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface"


def main() -> None:
    images = WIDER / "val-dev" / "images"
    gt = WiderGroundTruth.from_mat_dir(WIDER / "ground_truth", read_image_list(WIDER / "val-dev" / "image_list.txt"))
    predictions = read_submission(WIDER / "val-dev" / "reference-predictions")
    official = evaluate_wider(predictions, gt)
    out: dict[str, object] = {"official": {s: round(100 * official.ap[s], 5) for s in SETTINGS}}
    with tempfile.TemporaryDirectory() as folder:
        for setting in SETTINGS:
            anns = []
            for key, image in gt.images.items():
                xyxy = box_convert(image.boxes, "xywh", "xyxy").astype(np.float32)
                keep = image.keep[setting]
                n = int(keep.sum())
                anns.append(ImageAnnotation(f"{key}.jpg", xyxy[keep], np.zeros((n, 5, 2), np.float32),
                                            np.zeros(n, bool), xyxy[~keep]))  # fmt: skip
            path = Path(folder) / f"{setting}.json"
            write_labels(LabelSet(path, "coco", images, anns), "coco", path)
            coco = read_labels(path, LabelOptions(images=str(images)))
            ap = evaluate_wider(predictions, ground_truth_from_labels(coco.images)).ap["all"]
            out[f"coco_{setting}"] = {"ap": round(100 * ap, 5), "refused_boxes": coco.problems}
    bbx = read_labels(WIDER / "val-dev" / "wider_face_val_bbx_gt.txt", LabelOptions(images=str(images)))
    result = evaluate_wider(predictions, ground_truth_from_labels(bbx.images))
    out["bbx_gt_as_labels"] = {"faces": bbx.counts()["faces"], "ap": round(100 * result.ap["all"], 5),
                               "ap_50_95": round(100 * result.ap_50_95["all"], 5)}  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
