"""The official WIDER FACE protocol on hand-built cases and on the reference predictions."""

import numpy as np
import pytest

from conftest import need_shared
from retinakit import Faces
from retinakit.evaluation.wider import (
    WiderGroundTruth,
    WiderImage,
    evaluate_wider,
    read_image_list,
    read_submission,
)
from retinakit.io.formats import read_wider_file, to_wider_rows, write_wider_file


def gt_of(boxes, keep) -> WiderGroundTruth:
    keep = np.asarray(keep, bool)
    return WiderGroundTruth(
        {"ev/img": WiderImage(np.asarray(boxes, float), {s: keep for s in ("easy", "medium", "hard")})}
    )


GT2 = [[0, 0, 50, 50], [100, 100, 50, 50]]  # x y w h


def test_perfect_predictions_give_ap_one():
    preds = {"ev/img": np.array([[0, 0, 50, 50, 0.9], [100, 100, 50, 50, 0.8]])}
    result = evaluate_wider(preds, gt_of(GT2, [1, 1]))
    assert result.ap == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert result.ap_50_95["hard"] == pytest.approx(1.0)


def test_hand_computed_ap():
    # p1 hits face 1, p2 is a false positive, p3 hits face 2. Normalised scores 1, 0.5, 0:
    # thresholds > 0.5 -> P=1, R=0.5; thresholds in (0, 0.5] -> P=0.5, R=0.5; threshold 0 -> P=2/3, R=1.
    # Envelope: precision 1 up to recall 0.5, 2/3 up to 1 -> AP = 0.5 + 0.5 * 2/3.
    preds = {"ev/img": np.array([[0, 0, 50, 50, 0.9], [300, 300, 40, 40, 0.8], [100, 100, 50, 50, 0.7]])}
    result = evaluate_wider(preds, gt_of(GT2, [1, 1]))
    assert result.ap["easy"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_hit_on_an_ignored_face_changes_nothing():
    base = np.array([[0, 0, 50, 50, 0.9], [300, 300, 40, 40, 0.8], [100, 100, 50, 50, 0.7]])
    gt = gt_of([*GT2, [200, 0, 30, 30]], [1, 1, 0])  # third face is not in the keep list
    extra = np.array([[200, 0, 30, 30, 0.75]])  # hits only the ignored face
    with_extra = np.concatenate([base[:2], extra, base[2:]])
    a = evaluate_wider({"ev/img": base}, gt)
    b = evaluate_wider({"ev/img": with_extra}, gt)
    assert a.ap == b.ap and a.ap["easy"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_plus_one_iou_convention():
    # 10x10 GT and a prediction shifted by 3 px: continuous IoU 70/130 = 0.538; with +1 widths 88/154 = 0.571
    gt = gt_of([[0, 0, 10, 10]], [1])
    assert evaluate_wider({"ev/img": np.array([[3, 0, 10, 10, 1.0]])}, gt).ap["easy"] == 1.0
    # shifted by 4 px: +1 IoU 77/165 = 0.467 -> miss
    assert evaluate_wider({"ev/img": np.array([[4, 0, 10, 10, 1.0]])}, gt).ap["easy"] == 0.0


def test_submission_roundtrip_keeps_floats(tmp_path):
    faces = Faces(np.array([[10.25, 20.5, 30.75, 60.125]]), np.array([0.875]), np.zeros((1, 5, 2)))
    rows = to_wider_rows(faces)
    np.testing.assert_allclose(rows, [[10.25, 20.5, 20.5, 39.625, 0.875]])
    path = write_wider_file(tmp_path, "0--Parade/img_1", rows)
    assert path.read_text().splitlines()[:2] == ["img_1", "1"]
    np.testing.assert_allclose(read_wider_file(path), rows, atol=1e-3)
    assert list(read_submission(tmp_path)) == ["0--Parade/img_1"]


def test_malformed_submission_names_file_and_line(tmp_path):
    bad = tmp_path / "ev" / "x.txt"
    bad.parent.mkdir()
    bad.write_text("x\n2\n1 2 3 4 0.5\n1 2 three 4 0.5\n")
    with pytest.raises(ValueError, match=r"x.txt:4: not numbers"):
        read_wider_file(bad)


def test_reference_predictions_reproduce_the_official_port():
    root = need_shared("data", "widerface")
    keys = read_image_list(root / "val-dev" / "image_list.txt")
    gt = WiderGroundTruth.from_mat_dir(root / "ground_truth", keys)
    assert len(gt.images) == 1096
    result = evaluate_wider(read_submission(root / "val-dev" / "reference-predictions"), gt)
    assert result.ap["easy"] == pytest.approx(0.9199555, abs=1e-6)
    assert result.ap["medium"] == pytest.approx(0.8998129, abs=1e-6)
    assert result.ap["hard"] == pytest.approx(0.7500585, abs=1e-6)
    assert result.ap_50_95["easy"] == pytest.approx(0.5689571, abs=1e-6)
    assert result.ap_50_95["medium"] == pytest.approx(0.5453336, abs=1e-6)
    assert result.ap_50_95["hard"] == pytest.approx(0.3936504, abs=1e-6)


def test_evaluate_predictions_writes_json_and_plot(tmp_path):
    from retinakit.cli import main

    root = need_shared("data", "widerface")
    code = main(
        [
            "evaluate",
            "--ground-truth",
            str(root / "ground_truth"),
            "--subset",
            str(root / "val-dev" / "image_list.txt"),
            "--predictions",
            str(root / "val-dev" / "reference-predictions"),
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    import json

    data = json.loads((tmp_path / "wider_results.json").read_text())
    assert data["ap"]["hard"] == pytest.approx(0.7500585, abs=1e-6)
    assert (tmp_path / "pr_curves.png").stat().st_size > 10_000


def test_evaluate_runs_the_detector_on_a_subset(tmp_path):
    from retinakit.evaluation.run import evaluate

    root = need_shared("data", "widerface")
    subset = tmp_path / "list.txt"
    subset.write_text("0--Parade/0_Parade_Parade_0_194.jpg\n0--Parade/0_Parade_Parade_0_102.jpg\n")
    report = evaluate(root / "ground_truth", images=root / "val-dev" / "images", subset=subset, output=tmp_path)
    assert report.result.num_images == 2
    assert report.result.ap["easy"] > 0.8
    assert (tmp_path / "predictions" / "0--Parade" / "0_Parade_Parade_0_194.txt").is_file()


# ----------------------------------------------------------------------------- one's own ground truth


def _valdev_as_labels(root, setting):
    """val-dev's official ground truth as label records: the faces of ``setting`` as faces, the
    others (WIDER ignores them in that setting) as crowd regions."""
    from retinakit.core.boxes import box_convert
    from retinakit.io.labels import ImageAnnotation

    keys = read_image_list(root / "val-dev" / "image_list.txt")
    gt = WiderGroundTruth.from_mat_dir(root / "ground_truth", keys)
    out = []
    for key, image in gt.images.items():
        xyxy = box_convert(image.boxes, "xywh", "xyxy").astype(np.float32)
        keep = image.keep[setting]
        n = int(keep.sum())
        out.append(
            ImageAnnotation(f"{key}.jpg", xyxy[keep], np.zeros((n, 5, 2), np.float32), np.zeros(n, bool), xyxy[~keep])
        )
    return gt, out


@pytest.mark.parametrize("setting", ["easy", "medium", "hard"])
def test_coco_ground_truth_made_from_valdev_gives_the_wider_ap(tmp_path, setting):
    """The same figures through COCO: the setting's faces as faces, the rest as ``iscrowd`` regions.

    The one difference: the label reader refuses boxes of non-positive size, which the official
    hard list holds four of (two 0 x 2, a 2 x 0, a -2 x 23 px); restricted to usable boxes the
    figures are equal, and with them hard differs by 7e-5."""
    from retinakit.evaluation.wider import ground_truth_from_labels
    from retinakit.io.labels import LabelOptions, LabelSet, read_labels, write_labels

    root = need_shared("data", "widerface")
    gt, images = _valdev_as_labels(root, setting)
    labels = LabelSet(tmp_path / "x", "retinaface", root / "val-dev" / "images", images)
    write_labels(labels, "coco", tmp_path / "val.json")
    coco = read_labels(tmp_path / "val.json", LabelOptions(images=str(root / "val-dev" / "images")))
    usable = {k: (i.boxes[:, 2] > 0) & (i.boxes[:, 3] > 0) for k, i in gt.images.items()}
    assert coco.counts()["faces"] == sum(int((i.keep[setting] & usable[k]).sum()) for k, i in gt.images.items())
    assert coco.skipped_faces == 4  # faces in hard, ignore regions in easy and medium
    predictions = read_submission(root / "val-dev" / "reference-predictions")
    restricted = WiderGroundTruth(
        {k: WiderImage(i.boxes[usable[k]], {s: m[usable[k]] for s, m in i.keep.items()}) for k, i in gt.images.items()}
    )
    official = evaluate_wider(predictions, restricted)
    mine = evaluate_wider(predictions, ground_truth_from_labels(coco.images))
    assert mine.ap["all"] == pytest.approx(official.ap[setting], abs=1e-9)
    assert mine.ap_50_95["all"] == pytest.approx(official.ap_50_95[setting], abs=1e-9)
    assert abs(official.ap[setting] - evaluate_wider(predictions, gt).ap[setting]) < 1e-4


def test_evaluate_cli_on_coco_labels(tmp_path, capsys):
    from retinakit.cli import main
    from retinakit.io.labels import LabelOptions, read_labels, write_labels

    root = need_shared("data", "widerface")
    subset = tmp_path / "list.txt"
    subset.write_text("0--Parade/0_Parade_Parade_0_194.jpg\n0--Parade/0_Parade_Parade_0_102.jpg\n")
    wider = read_labels(
        root / "val-dev" / "wider_face_val_bbx_gt.txt", LabelOptions(images=str(root / "val-dev" / "images"))
    )
    wanted = set(subset.read_text().split())
    wider = type(wider)(wider.source, wider.format, wider.root, [a for a in wider.images if a.image in wanted])
    write_labels(wider, "coco", tmp_path / "val.json")
    args = ["evaluate", "--ground-truth", str(tmp_path / "val.json"), "--images", str(root / "val-dev" / "images")]
    assert main([*args, "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 images" in out and "all" in out
    data = __import__("json").loads((tmp_path / "out" / "wider_results.json").read_text())
    assert set(data["ap"]) == {"all"}
    # the same figure as the library on the same labels (no ignore sets here: tiny faces count, so it is low)
    from retinakit import Detector
    from retinakit.evaluation.protocols import get_protocol
    from retinakit.evaluation.run import labels_ap

    coco = read_labels(tmp_path / "val.json", LabelOptions(images=str(root / "val-dev" / "images")))
    expected = labels_ap(Detector(get_protocol("original").detector_config()), coco).ap["all"]
    assert data["ap"]["all"] == pytest.approx(expected, abs=1e-9) and 0 < expected < 1
