"""Bad inputs found by trying retinakit as a new user would (issue #16): each gives the documented
result or a clear message, and the other inputs of the same run are still processed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import WIDER, need_shared
from retinakit import Detector, Faces, ImageError
from retinakit.apps.files import OutputNames, iter_detections
from retinakit.apps.video import detect_video
from retinakit.cli import main
from retinakit.errors import AnnotationError, EvaluationError, OutputError
from retinakit.inference.preprocess import plan_batches, to_bgr, to_uint8
from retinakit.io.batching import same_shape_batches
from retinakit.io.inputs import IMAGE_SUFFIXES, find_images
from retinakit.io.video import camera_index, is_video_source


@pytest.fixture(scope="module")
def astro_bgr(astronaut_rgb) -> np.ndarray:
    return np.ascontiguousarray(astronaut_rgb[:, :, ::-1])


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ 1. silent wrong results: the array rule


@pytest.mark.parametrize(
    ("convert", "expected"),
    [
        (lambda a: a.astype(np.float32) / 255, "x255"),  # matplotlib.pyplot.imread of a PNG
        (lambda a: a.astype(np.float64) / 255, "x255"),
        (lambda a: a.astype(np.float32), "as is"),  # float in [0, 255]
        (lambda a: a.astype(np.uint16) * 257, ">>8"),  # 16-bit PNG / TIFF
        (lambda a: a.astype(np.int32), "as is"),  # integers within 0-255
    ],
)
def test_array_dtypes_follow_the_documented_rule(astronaut_rgb, detector, convert, expected):
    array = convert(astronaut_rgb)
    bgr = to_bgr(array, "rgb")
    assert bgr.dtype == np.uint8 and bgr.shape == astronaut_rgb.shape
    np.testing.assert_array_equal(bgr[:, :, ::-1], astronaut_rgb)  # every rule restores the 8-bit values
    faces = detector(array, color="rgb")
    assert len(faces) == 1 and faces.scores[0] > 0.99, expected


def test_pil_16_bit_and_float_images_are_not_clipped_to_white(astronaut_rgb, detector):
    from PIL import Image

    gray = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2GRAY)
    for image in (Image.fromarray(gray.astype(np.uint16) * 257), Image.fromarray(gray.astype(np.float32) / 255)):
        assert image.mode in ("I;16", "F")
        np.testing.assert_array_equal(to_bgr(image)[:, :, 0], gray)
        assert len(detector(image)) == 1


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((8, 8, 3), np.nan, np.float32), "NaN or infinity"),
        (np.full((8, 8), np.inf), "NaN or infinity"),
        (np.full((8, 8), -0.5, np.float32), r"must lie in \[0, 1\] or \[0, 255\], got \[-0.5, -0.5\]"),
        (np.full((8, 8), 300.0), r"got \[300, 300\]"),
        (np.full((8, 8), 4096, np.int32), r"int32 values must lie in \[0, 255\]"),
        (np.full((8, 8), -1, np.int8), r"int8 values must lie in \[0, 255\]"),
        (np.ones((8, 8), bool), "unsupported dtype bool"),
        (np.ones((8, 8), complex), "unsupported dtype complex128"),
        (np.zeros((3, 8, 8), np.uint8), r"expected shape .* got \(3, 8, 8\)"),
        (np.zeros((0, 8, 3), np.uint8), "empty image"),
    ],
)
def test_unusable_arrays_raise_image_error(array, message):
    with pytest.raises(ImageError, match=message):
        to_bgr(array, "bgr")


def test_to_uint8_rules_by_hand():
    np.testing.assert_array_equal(to_uint8(np.array([0, 255, 256, 65535], np.uint16)), [0, 0, 1, 255])
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0])), [0, 128, 255])  # [0, 1]: x255, rounded
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 1.5, 254.6])), [0, 2, 255])  # else [0, 255], rounded


def test_detect_batch_refuses_a_single_image_and_accepts_a_stack(astro_bgr, detector):
    with pytest.raises(TypeError, match="got a 3-D array; use detector"):
        detector.detect_batch(astro_bgr, color="bgr")
    with pytest.raises(TypeError, match="got a single str"):
        detector.detect_batch("photos/")
    with pytest.raises(TypeError, match="got a single PosixPath"):
        detector.detect_batch(Path("photos"))
    stack = np.stack([astro_bgr, astro_bgr[:, ::-1]])
    assert [len(f) for f in detector.detect_batch(stack, color="bgr")] == [1, 1]


def test_detect_batch_errors_raise_by_default_or_return_per_image(tmp_path, astro_bgr, detector):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), astro_bgr)
    with pytest.raises(ImageError, match="missing.jpg: no such file"):
        detector.detect_batch([good, tmp_path / "missing.jpg"])
    results = detector.detect_batch([good, tmp_path / "missing.jpg", np.full((8, 8), np.nan), good], errors="return")
    assert isinstance(results[1], ImageError) and "missing.jpg: no such file" in str(results[1])
    assert isinstance(results[2], ImageError) and "NaN" in str(results[2])
    assert [len(results[0]), len(results[3])] == [1, 1]
    with pytest.raises(ValueError, match="errors must be"):
        detector.detect_batch([good], errors="ignore")  # type: ignore[call-overload]


def _avi(path: Path, frames: int, image: np.ndarray) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (image.shape[1], image.shape[0]))
    for _ in range(frames):
        writer.write(image)
    writer.release()


def test_truncated_video_raises_after_its_records_and_the_cli_exits_1(tmp_path, astro_bgr, detector, capsys):
    small = cv2.resize(astro_bgr, (128, 128))
    full, cut = tmp_path / "full.avi", tmp_path / "cut.avi"
    _avi(full, 20, small)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert len(list(detect_video(full, detector))) == 20  # a complete video passes
    records = []
    with pytest.raises(Exception, match=r"cut.avi: the video ends after frame \d+ of 20 \(truncated"):
        for record in detect_video(cut, detector):
            records.append(record)
    assert 0 < len(records) < 18
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), astro_bgr)
    assert main(["detect", str(cut), str(image), "--no-progress"]) == 1
    captured = capsys.readouterr()
    out = _records(captured.out)
    assert "truncated or corrupt" in captured.err
    assert any(r.get("path", "").endswith("photo.jpg") and len(r["faces"]) == 1 for r in out)  # the image still ran
    assert any("frame" in r for r in out) and any("error" in r for r in out)


# ------------------------------------------------------------------ 1. evaluation with nothing to evaluate


def test_evaluate_with_empty_predictions_or_missing_images_fails_clearly(tmp_path, capsys):
    gt = need_shared("data", "widerface", "ground_truth")
    subset = WIDER / "val-dev" / "image_list.txt"
    (tmp_path / "empty").mkdir()
    out = tmp_path / "eval"
    args = ["evaluate", "--ground-truth", str(gt), "--subset", str(subset), "--output", str(out), "--no-progress"]
    assert main([*args, "--predictions", str(tmp_path / "empty")]) == 1
    assert "no submission file for any of the 1096 images" in capsys.readouterr().err
    assert main([*args, "--images", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: image folder not found" in capsys.readouterr().err
    assert not (out / "wider_results.json").exists()


def test_evaluate_with_no_readable_image_raises(tmp_path):
    from retinakit.evaluation.run import evaluate

    need_shared("data", "widerface", "ground_truth")
    (tmp_path / "images").mkdir()
    subset = tmp_path / "list.txt"
    subset.write_text("0--Parade/0_Parade_Parade_0_194.jpg\n")
    with pytest.raises(EvaluationError, match="none of the 1 images .* could be read.*no such file"):
        evaluate(WIDER / "ground_truth", images=tmp_path / "images", subset=subset, output=tmp_path / "out")
    assert not (tmp_path / "out" / "wider_results.json").exists()


def test_binary_subset_and_corrupt_mat_files_are_named(tmp_path, capsys):
    from retinakit.evaluation.wider import WiderGroundTruth, read_image_list

    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(AnnotationError, match="a.jpg: not a UTF-8 text file"):
        read_image_list(photo)
    for name in ("wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"):
        (tmp_path / name).write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 2)
    with pytest.raises(AnnotationError, match="wider_face_val.mat: not a readable WIDER FACE ground-truth"):
        WiderGroundTruth.from_mat_dir(tmp_path)
    from scipy.io import savemat

    savemat(tmp_path / "wider_face_val.mat", {"something": np.zeros(3)})
    with pytest.raises(AnnotationError, match="wider_face_val.mat: not a WIDER FACE ground-truth file .*event_list"):
        WiderGroundTruth.from_mat_dir(tmp_path)
    assert main(["evaluate", "--ground-truth", str(tmp_path), "--predictions", str(tmp_path)]) == 1
    assert "wider_face_val.mat" in capsys.readouterr().err


# ------------------------------------------------------------------ 2. lost outputs


@pytest.fixture()
def clashing_tree(tmp_path, astro_bgr) -> Path:
    """``2023/party/img1.jpg``, ``2024/party/img1.jpg``, ``x/a.tiff``, ``x/a.webp`` (all with one face)."""
    root = tmp_path / "photos"
    for name in ("2023/party/img1.jpg", "2024/party/img1.jpg", "x/a.tiff", "x/a.webp"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / name), cv2.resize(astro_bgr, (256, 256)))
    return root


def test_same_names_in_different_folders_or_formats_keep_separate_outputs(clashing_tree, tmp_path, capsys):
    ann, wider, out = tmp_path / "ann", tmp_path / "wider", tmp_path / "out.jsonl"
    code = main(
        [
            "detect",
            str(clashing_tree),
            "-o",
            str(out),
            "--save-images",
            str(ann),
            "--wider",
            str(wider),
            "--no-progress",
        ]
    )
    written = sorted(str(p.relative_to(ann)) for p in ann.rglob("*") if p.is_file())
    assert written == ["2023/party/img1.jpg", "2024/party/img1.jpg", "x/a.tiff.jpg", "x/a.webp.jpg"]
    txt = sorted(str(p.relative_to(wider)) for p in wider.rglob("*.txt"))
    assert txt == ["2023/party/img1.txt", "2024/party/img1.txt", "x/a.txt"]
    # WIDER names drop the extension (the submission format): the second of a.tiff / a.webp is refused, not lost
    assert code == 1
    records = {Path(r["path"]).name: r for r in _records(out.read_text())}
    assert "already written for" in records["a.webp"]["error"] and "a.tiff" in records["a.webp"]["error"]
    assert len(records["a.webp"]["faces"]) == 1  # the detection itself is still reported
    assert all("error" not in records[n] for n in ("img1.jpg", "a.tiff"))
    assert "a.webp: output failed" in capsys.readouterr().err


def test_align_keeps_every_crop_and_records_images_without_faces(clashing_tree, tmp_path):
    cv2.imwrite(str(clashing_tree / "x" / "blank.png"), np.full((64, 64, 3), 200, np.uint8))
    out = tmp_path / "crops"
    assert main(["align", str(clashing_tree), "--out", str(out), "--no-progress"]) == 0
    crops = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert crops == ["2023/party/img1.jpg_0.png", "2024/party/img1.jpg_0.png", "x/a.tiff_0.png", "x/a.webp_0.png"]
    index = _records((out / "index.jsonl").read_text())
    assert len(index) == 5
    blank = [r for r in index if r["source"].endswith("blank.png")]
    assert blank == [{"source": str(clashing_tree / "x" / "blank.png"), "faces": 0}]


def test_outputs_that_would_overwrite_inputs_are_refused(clashing_tree, capsys):
    photo = clashing_tree / "2023" / "party" / "img1.jpg"
    before = photo.read_bytes()
    assert main(["detect", str(photo), "-o", str(photo), "--no-progress"]) == 2
    assert "would overwrite an input file" in capsys.readouterr().err
    # annotated copies written into the input tree itself: same relative names as the inputs
    folder = clashing_tree / "2023" / "party"  # the only input is 2023/party/img1.jpg: its output name is img1.jpg
    assert main(["detect", str(folder), "--save-images", str(folder), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "refusing to overwrite the input" in captured.err
    assert _records(captured.out)[0]["faces"]  # the detection is still reported
    assert photo.read_bytes() == before


def test_output_names_are_relative_to_the_common_root(tmp_path):
    a, b = tmp_path / "2023" / "party" / "img1.jpg", tmp_path / "2024" / "party" / "img1.jpg"
    names = OutputNames([a, b])
    assert names.root == tmp_path
    assert names.relative(a) == Path("2023/party/img1.jpg")
    single = OutputNames([a])
    assert single.relative(a) == Path("img1.jpg")  # a single input lands directly in the output folder
    assert single.annotated("out", a) == Path("out/img1.jpg")
    assert single.annotated("out", a.with_suffix(".JPEG")) == Path("out/img1.JPEG")
    assert single.wider("wider", a) == (Path("wider"), "party/img1")  # WIDER keeps event/name
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        single.annotated(tmp_path / "2023" / "party", a)


# ------------------------------------------------------------------ 3. inputs read as something else


def test_existing_paths_win_over_cameras_and_empty_arguments_are_reported(tmp_path, astro_bgr, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("2023").mkdir()
    cv2.imwrite("2023/img.jpg", astro_bgr)
    Path("x.jpg").mkdir()  # a folder with an image name, holding one image
    cv2.imwrite("x.jpg/inner.png", astro_bgr)
    Path("empty").mkdir()
    Path("anim.gif").write_bytes(cv2.imencode(".gif", astro_bgr)[1].tobytes())
    assert ".gif" in IMAGE_SUFFIXES
    assert camera_index("2023") is None and not is_video_source("2023")
    assert camera_index("camera:0") == 0 and camera_index("7") == 7 and is_video_source("camera:2")
    Path("clip.mp4").mkdir()  # a folder with a video name is a folder
    cv2.imwrite("clip.mp4/frame.jpg", astro_bgr)
    assert is_video_source("other.mp4") and not is_video_source("clip.mp4")
    assert main(["detect", "2023", "x.jpg", "empty", "nothing*.png", ".", "--no-progress"]) == 1
    captured = capsys.readouterr()
    records = _records(captured.out)
    errors = {r["path"]: r["error"] for r in records if "error" in r}
    assert set(errors) == {"empty", "nothing*.png"} and errors["nothing*.png"] == "no file matches this pattern"
    assert errors["empty"].startswith("folder contains no images")
    found = sorted(r["path"] for r in records if "faces" in r)
    # "." adds the files not named before, once each
    assert found == ["2023/img.jpg", "anim.gif", "clip.mp4/frame.jpg", "x.jpg/inner.png"]
    assert all(len(r["faces"]) == 1 for r in records if "faces" in r)
    assert "empty: folder contains no images" in captured.err and "nothing*.png: no file matches" in captured.err


def test_find_images_lists_every_argument_that_yields_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    listing = find_images([tmp_path / "d", str(tmp_path / "*.jpg"), tmp_path / "missing.jpg"])
    assert listing.paths == [tmp_path / "missing.jpg"]  # kept: reading it reports "no such file"
    assert set(listing.empty) == {str(tmp_path / "d"), str(tmp_path / "*.jpg")}


# ------------------------------------------------------------------ 4. memory


def test_plan_batches_by_hand():
    # largest first; no padding beyond a third; pixel budget; image count
    shapes = [(480, 640), (3000, 4000), (480, 640), (500, 640), (10, 10)]
    assert plan_batches(shapes, max_images=8, max_pixels=10**9) == [[1], [3, 0, 2], [4]]
    assert plan_batches(shapes, max_images=2, max_pixels=10**9) == [[1], [3, 0], [2], [4]]
    # budget: two 500x640 padded images are 640,000 pixels
    assert plan_batches(shapes, max_images=8, max_pixels=640_000) == [[1], [3, 0], [2], [4]]
    assert plan_batches([(100, 100)] * 3, max_images=8, max_pixels=1) == [[0], [1], [2]]  # alone, never refused
    assert plan_batches([], 8, 100) == []


def test_same_shape_batches_respect_the_pixel_budget():
    images = [np.zeros((10, 10)), np.zeros((10, 10)), np.zeros((10, 10)), np.zeros((5, 5))]
    runs = list(same_shape_batches(images, lambda im: im, max_size=8, max_pixels=250))
    assert [len(r) for r in runs] == [2, 1, 1]


class _PickyBackend:
    """Delegates to a real backend but fails batches of more than one image, as an exhausted allocator would."""

    def __init__(self, real, message: str) -> None:
        self.real, self.message, self.config, self.calls = real, message, real.config, []
        self.input_layout = getattr(real, "input_layout", "nchw_float")

    def __call__(self, batch):
        self.calls.append(batch.shape[0])
        if batch.shape[0] > 1 or self.message.startswith("always"):
            raise RuntimeError(self.message)
        return self.real(batch)


@pytest.mark.parametrize("message", ["Failed to allocate memory for requested buffer", "std::bad_alloc"])
def test_a_pass_out_of_memory_is_retried_one_image_at_a_time(astro_bgr, detector, message):
    picky = _PickyBackend(detector.backend, message)
    det = Detector(backend_instance=picky)
    results = det.detect_bgr([astro_bgr, astro_bgr[:, ::-1].copy()])
    assert [len(f) for f in results] == [1, 1] and picky.calls == [2, 1, 1]
    picky.message = "always: Failed to allocate memory"
    with pytest.raises(MemoryError, match="512x512 network input.*max_side"):
        det.detect_bgr([astro_bgr])
    picky.message = "some other failure"
    with pytest.raises(RuntimeError, match="some other failure"):
        det.detect_bgr([astro_bgr, astro_bgr])


def test_a_failing_image_in_a_run_does_not_fail_its_neighbours(tmp_path, astro_bgr, detector):
    class FailsOnBlank:
        config = detector.backend.config
        input_layout = getattr(detector.backend, "input_layout", "nchw_float")

        def __call__(self, batch):
            if any(len(np.unique(image)) <= 3 for image in batch):  # a blank image (one colour)
                raise RuntimeError("broken input")
            return detector.backend(batch)

    for name, image in (("a.png", astro_bgr), ("b.png", np.zeros_like(astro_bgr)), ("c.png", astro_bgr)):
        cv2.imwrite(str(tmp_path / name), image)
    det = Detector(backend_instance=FailsOnBlank())
    results = list(iter_detections(sorted(tmp_path.glob("*.png")), det))
    assert [r.error for r in results] == [None, "detection failed: broken input", None]
    assert [len(r.faces) for r in results if r.faces is not None] == [1, 1]


def test_mixed_sizes_give_the_same_faces_as_single_images(astro_bgr, detector):
    images = [cv2.resize(astro_bgr, (s, s)) for s in (512, 200, 640, 300)]
    singles = [detector.detect_bgr([im])[0] for im in images]
    for single, batched in zip(singles, detector.detect_batch(images, color="bgr"), strict=True):
        assert isinstance(batched, Faces) and len(single) == len(batched) == 1
        np.testing.assert_allclose(single.boxes, batched.boxes, atol=1.0)


# ------------------------------------------------------------------ 5. crashes and unclear messages


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["detect", "x.mp4", "--every", "0"], "--every: must be >= 1, got 0"),
        (["align", "x.jpg", "--out", "o", "--size", "100000"], "--size: must be between 16 and 4096, got 100000"),
        (["align", "x.jpg", "--out", "o", "--size", "-5"], "--size: must be between 16 and 4096, got -5"),
    ],
)
def test_bad_numbers_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_library_checks_every_and_crop_size(tmp_path, detector, astro_bgr):
    from retinakit.ops.align import align_faces, template

    video = tmp_path / "v.avi"
    _avi(video, 2, cv2.resize(astro_bgr, (64, 64)))
    with pytest.raises(ValueError, match="every must be >= 1, got 0"):
        next(detect_video(video, detector, every=0))
    for size in (100000, -5, 8):
        with pytest.raises(ValueError, match="crop size must be an integer from 16 to 4096"):
            template(size)
        with pytest.raises(ValueError, match="crop size"):
            align_faces(astro_bgr, np.zeros((1, 5, 2)), size)
