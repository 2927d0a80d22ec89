"""The ``auto`` resize policy, rotated passes and the one threshold rule (retinakit.inference.scales)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retinakit import Detector, Faces
from retinakit.inference.scales import (
    ScaleConfig,
    add_lone_faces,
    check_windows,
    detail_scale,
    faces_to_original,
    merge_scales,
    pass_factors,
    points_to_original,
    rotate_image,
)

CONFIG = ScaleConfig()


def faces(boxes, scores) -> Faces:
    boxes = np.asarray(boxes, dtype=np.float32)
    return Faces(boxes, np.asarray(scores), np.zeros((len(boxes), 5, 2)))


def test_pass_factors_by_hand():
    assert pass_factors(480, 640, 1.0, CONFIG) == [1.0]  # VGA: short side 480 <= 512, one pass
    assert pass_factors(683, 1024, 1.0, CONFIG) == [1.0, 0.25]  # 683 > 512; 171 <= 512
    assert pass_factors(3000, 4000, 1.0, CONFIG) == [1.0, 0.25, 0.0625]  # 3000, 750, 187.5
    assert pass_factors(3000, 4000, 0.32, CONFIG) == [0.32, 0.08]  # max_side=1280 first: 960, then 240
    assert pass_factors(40, 5000, 1.0, CONFIG) == [1.0]  # a thin strip has no room for a big face


def test_merge_scales_keeps_each_size_where_it_is_represented():
    # fine pass (factor 1): a 100 px face (kept), a 400 px face (too big for it: the coarse pass's),
    # and a 120 px fragment inside the big face; coarse pass (factor 0.25): the big face (100 px
    # there) and the small face seen faintly (its evidence), and a 40 px face (too small there)
    fine = faces([[0, 0, 100, 100], [500, 500, 900, 900], [600, 600, 720, 720]], [0.9, 0.95, 0.97])
    coarse = faces([[505, 495, 905, 895], [2, 0, 102, 98], [1000, 0, 1040, 40]], [0.99, 0.2, 0.8])
    merged = merge_scales([(1.0, fine), (0.25, coarse)], CONFIG, 0.5, 0.4, 750)
    np.testing.assert_allclose(merged.boxes, [[505, 495, 905, 895], [0, 0, 100, 100]])
    np.testing.assert_allclose(merged.scores, [0.99, 0.9], rtol=1e-6)


def test_merge_scales_drops_large_finer_faces_the_coarser_view_does_not_see():
    # in an image with two coarser passes (a 12 MP photo), a 200 px face of the fine pass is 50 px
    # in the next one and a 64 px face 16 px (>= verify_size 16): they need evidence there; a 60 px
    # face (15 px there, below the smallest anchor) does not
    fine = faces([[0, 0, 200, 200], [300, 0, 500, 200], [600, 0, 664, 64], [800, 0, 860, 60]], [0.9] * 4)
    coarse = faces([[0, 0, 196, 204]], [0.25])  # only the first is seen there, faintly
    coarsest = faces(np.zeros((0, 4)), [])
    merged = merge_scales([(1.0, fine), (0.25, coarse), (0.0625, coarsest)], CONFIG, 0.5, 0.4, 750)
    np.testing.assert_allclose(merged.boxes, [[0, 0, 200, 200], [800, 0, 860, 60]])
    # with one coarser pass only (an image of up to 2048 px on its short side) nothing is checked
    assert len(merge_scales([(1.0, fine), (0.25, coarse)], CONFIG, 0.5, 0.4, 750)) == 4


def test_the_half_size_view_checks_the_first_pass_faces_from_32_px():
    fine = faces([[0, 0, 40, 40], [300, 0, 340, 40], [600, 0, 630, 30]], [0.9, 0.9, 0.9])
    empty = faces(np.zeros((0, 4)), [])
    half = (0.5, faces([[1, 0, 40, 39]], [0.2]))  # the first 40 px face is seen at half size (20 px >= 16)
    merged = merge_scales([(1.0, fine), (0.25, empty), (0.0625, empty)], CONFIG, 0.5, 0.4, 750, half)
    # the second 40 px face is not seen there; the 30 px one (15 px at half size) is not checked
    np.testing.assert_allclose(merged.boxes, [[0, 0, 40, 40], [600, 0, 630, 30]])
    # an 80 px face is 20 px in the next pass, which checks it: the half-size view does not
    big = faces([[0, 0, 80, 80]], [0.9])
    seen_next = faces([[0, 0, 80, 80]], [0.3])
    merged = merge_scales([(1.0, big), (0.25, seen_next), (0.0625, empty)], CONFIG, 0.5, 0.4, 750, (0.5, empty))
    assert len(merged) == 1
    merged = merge_scales([(1.0, big), (0.25, empty), (0.0625, empty)], CONFIG, 0.5, 0.4, 750, (0.5, seen_next))
    assert len(merged) == 0  # not seen by the next pass: dropped, whatever the half-size view saw


def test_a_fragment_needs_a_much_larger_confident_container():
    fine = faces([[100, 100, 400, 400], [600, 600, 700, 700]], [0.95, 0.9])
    # a coarse box barely larger than the first face (1.2x its area) and a faint large one over the second
    coarse = faces([[90, 90, 418, 418], [500, 500, 1300, 1300]], [0.99, 0.3])
    merged = merge_scales([(1.0, fine), (0.25, coarse)], CONFIG, 0.2, 0.4, 750)
    # the first face is no fragment (its duplicate is removed by NMS, the better score kept);
    # the second is inside a large box that is not confident (0.3 < container_score 0.5): kept too
    np.testing.assert_allclose(np.sort(merged.scores), [0.3, 0.9, 0.99], rtol=1e-6)


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_rotation_maps_points_back(angle):
    image = np.zeros((30, 50, 3), np.uint8)
    image[4, 7] = 255  # pixel (x=7, y=4): its centre is (7.5, 4.5)
    turned = rotate_image(image, angle)
    y, x = np.argwhere(turned[:, :, 0] == 255)[0]
    back = points_to_original(np.array([[x + 0.5, y + 0.5]]), angle, 30, 50)
    np.testing.assert_allclose(back, [[7.5, 4.5]])


def test_rotated_box_is_mapped_to_a_box_and_tagged():
    found = faces([[10, 20, 30, 60]], [0.9])  # in the image turned 90 degrees (50 x 30 -> 30 wide, 50 high)
    mapped = faces_to_original(found, 90, 30, 50)
    # turned (x, y) -> original (50 - y, x): x in [50-60, 50-20] = [-10, 30], y in [10, 30]
    np.testing.assert_allclose(mapped.boxes, [[-10, 10, 30, 30]])
    assert mapped.angles.tolist() == [90]


@pytest.fixture(scope="module")
def portrait(astronaut_rgb) -> np.ndarray:
    return np.ascontiguousarray(astronaut_rgb[:, :, ::-1])


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_orientations_find_a_turned_face_in_the_input_frame(detector, portrait, angle):
    upright = detector.detect_bgr([portrait])[0]
    turned = rotate_image(portrait, (360 - angle) % 360)  # the photo as a camera on its side took it
    plain = detector.detect_bgr([turned])[0]
    found = Detector(precision="fp32", orientations=(0, 90, 180, 270)).detect_bgr([turned])[0]
    assert len(found) == 1 and found.angles.tolist() == [angle]
    # the turned photo is the upright one turned by 360 - angle: mapped onto the upright frame, the
    # box is the upright detection's
    back = faces_to_original(
        Faces(found.boxes, found.scores, found.landmarks), (360 - angle) % 360, *portrait.shape[:2]
    )
    np.testing.assert_allclose(back.boxes, upright.boxes, atol=6)
    assert len(plain) == 0 or plain.scores.max() < found.scores.max()
    auto = Detector(precision="fp32", orientations="auto").detect_bgr([turned])[0]
    assert auto.angles.tolist() == [angle] and auto.scores[0] == pytest.approx(found.scores[0], abs=1e-6)


def test_auto_finds_a_close_up_face_that_one_pass_breaks_into_fragments(detector, portrait):
    from retinakit.core.boxes import box_iou

    crop = portrait[20:250, 130:330]
    (expected,) = detector.detect_bgr([crop])[0].boxes * 8  # the face in the crop, enlarged 8 times
    close_up = cv2.resize(crop, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # 1600 x 1840, face ~750 px
    single = Detector(precision="fp32", resize="single").detect_bgr([close_up])[0]
    auto = detector.detect_bgr([close_up])[0]
    assert len(auto) == 1 and box_iou(auto.boxes, expected[None])[0, 0] > 0.7
    assert not (len(single) == 1 and box_iou(single.boxes, expected[None])[0, 0] > 0.7)  # one pass does not


def detect_with_shapes(detector: Detector, image: np.ndarray) -> tuple[Faces, list[tuple[int, int]]]:
    """``detector``'s faces on ``image`` and the network-input shape of each of its passes, in order."""
    shapes = []
    infer = detector.infer

    def spy(resized, frames, post=None):
        shapes.append(resized[0].shape[:2])
        return infer(resized, frames, post)

    try:
        detector.infer = spy
        return detector.detect_bgr([image])[0], shapes
    finally:
        del detector.infer


def test_detail_scale_tells_upscaled_photos_from_sharp_ones(portrait):
    def up(image, k):
        return cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)

    assert detail_scale(np.tile(portrait, (4, 4, 1)), CONFIG) == 1  # 2048 px, detail down to its pixels
    assert detail_scale(np.tile(up(portrait, 2), (2, 2, 1)), CONFIG) == 1  # 2x: not clearly upscaled
    assert detail_scale(up(portrait, 4), CONFIG) == 4
    assert detail_scale(up(portrait, 8), CONFIG) == 8
    assert detail_scale(up(portrait, 4)[:2000, :2000], CONFIG) == 1  # below detail_from: not measured
    # a rough JPEG upscaled 3.9x: its lowest ratio is at 2, but at 4 the ratio is below detail_ratio
    _, jpeg = cv2.imencode(".jpg", np.tile(portrait, (2, 2, 1)), [cv2.IMWRITE_JPEG_QUALITY, 30])
    rough = up(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), 3.9)
    assert detail_scale(rough, CONFIG) == 4
    assert detail_scale(rough, ScaleConfig(detail_ratio=0)) == 1  # the lowest ratio alone
    # flat images (a black frame, a grey card) have nothing to measure: 1, the path that loses no face
    assert detail_scale(np.zeros((2160, 3840, 3), np.uint8), CONFIG) == 1
    assert detail_scale(np.full((2160, 3840, 3), 128, np.uint8), CONFIG) == 1


def test_an_upscaled_photo_runs_at_twice_its_detail_scale(detector, portrait):
    from retinakit.core.boxes import box_iou

    (expected,) = detector.detect_bgr([portrait])[0].boxes * 4
    photo = cv2.resize(portrait, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 px, detail 4
    found, shapes = detect_with_shapes(detector, photo)
    # first pass at 1/2 (twice the detail scale), the coarser pass at 1/8, the check at 1/4 (the detail scale)
    assert shapes == [(1024, 1024), (256, 256), (512, 512)]
    assert len(found) == 1 and box_iou(found.boxes, expected[None])[0, 0] > 0.8


def test_flip_alone_runs_every_pass_of_the_ladder_plain_and_mirrored(detector, portrait):
    from retinakit.core.boxes import box_iou

    (expected,) = detector.detect_bgr([portrait])[0].boxes * 4
    photo = cv2.resize(portrait, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 px, detail 4
    flipped = Detector(precision="fp32", flip=True)
    views = []
    infer = flipped.infer

    def spy(resized, frames, post=None):
        views.append(resized)
        return infer(resized, frames, post)

    flipped.infer = spy
    found = flipped.detect_bgr([photo])[0]
    # the upscaled photo's passes (as without flip), each as one forward pass of the view and its mirror
    assert [views[0].shape[:2] for views in views] == [(1024, 1024), (256, 256), (512, 512)]
    assert all(len(pair) == 2 and np.array_equal(pair[1], pair[0][:, ::-1]) for pair in views)
    assert len(found) == 1 and box_iou(found.boxes, expected[None])[0, 0] > 0.8


def test_flip_alone_finds_a_close_up_face_as_a_whole(detector, portrait):
    """Before flip joined the ladder, flip=True ran one pass at the original size: fragments."""
    from retinakit.core.boxes import box_iou

    crop = portrait[20:250, 130:330]
    (expected,) = detector.detect_bgr([crop])[0].boxes * 8
    close_up = cv2.resize(crop, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # face ~750 px
    found = Detector(precision="fp32", flip=True).detect_bgr([close_up])[0]
    one_pass = Detector(precision="fp32", flip=True, resize="single").detect_bgr([close_up])[0]
    assert len(found) == 1 and box_iou(found.boxes, expected[None])[0, 0] > 0.7
    assert not (len(one_pass) == 1 and box_iou(one_pass.boxes, expected[None])[0, 0] > 0.7)


def test_flip_alone_on_a_one_pass_image_is_the_tta_flip(crowd):
    from retinakit.inference.tta import merge_passes, tta_passes

    for threshold in (0.05, 0.15):  # the crowd's small faces score low
        detector = Detector(precision="fp32", flip=True, score_threshold=threshold)
        config = detector.config.tta_config
        voted = merge_passes(tta_passes(detector, crowd, config), config, 750)
        voted = voted[voted.scores >= threshold]
        found = detector.detect_bgr([crowd])[0]
        assert len(found) == len(voted) > 0
        np.testing.assert_allclose(found.boxes, voted.boxes, atol=1e-4)
        np.testing.assert_allclose(found.scores, voted.scores, atol=1e-6)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.95])
def test_an_upscaled_photo_returns_nothing_below_the_threshold(monkeypatch, crowd, threshold):
    photo = cv2.resize(crowd, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2560 px, faces 40-160 px
    monkeypatch.setattr("retinakit.detector.detail_scale", lambda image, config: 4)  # its path, whatever the estimate
    faint = Detector(precision="fp32", score_threshold=0.2).detect_bgr([photo])[0]
    assert ((faint.scores >= 0.2) & (faint.scores < threshold)).any()  # faint faces a leak would return
    found = Detector(precision="fp32", score_threshold=threshold).detect_bgr([photo])[0]
    assert len(found) and (found.scores >= threshold).all()


def test_an_upscaled_photo_keeps_only_faces_with_12_detail_pixels(monkeypatch):
    detector = Detector(precision="fp32")
    photo = np.zeros((2048, 2048, 3), np.uint8)
    monkeypatch.setattr("retinakit.detector.detail_scale", lambda image, config: 4)
    # every pass sees the same two faces (in the photo's pixels): 44 px (11 px of detail) and 200 px
    both = faces([[100, 100, 144, 144], [800, 800, 1000, 1000]], [0.9, 0.9])
    monkeypatch.setattr(detector, "_infer_or_split", lambda resized, frames, post=None: [both])
    found = detector.detect_bgr([photo])[0]
    assert found.boxes.tolist() == [[800, 800, 1000, 1000]]
    monkeypatch.setattr("retinakit.detector.detail_scale", lambda image, config: 1)  # a sharp photo keeps both
    assert len(detector.detect_bgr([photo])[0]) == 2


def passes_run(detector: Detector, image: np.ndarray) -> list[tuple[int, int]]:
    """The network-input shape of each pass ``detector`` runs on ``image`` (the network not run: no faces)."""
    shapes = []

    def spy(resized, frames, post=None):
        shapes.append(resized[0].shape[:2])
        return [Faces.empty() for _ in resized]

    detector.infer = spy
    try:
        detector.detect_bgr([image])
    finally:
        del detector.infer
    return shapes


def test_the_detail_option_overrides_the_estimate(portrait):
    upscaled = cv2.resize(portrait, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 px, detail 4
    sharp = np.tile(portrait, (4, 4, 1))  # 2048 px, detail 1
    # measured: the upscaled photo's first pass at 1/2, the sharp one's at the original size
    assert passes_run(Detector(), upscaled)[0] == (1024, 1024)
    assert passes_run(Detector(), sharp)[0] == (2048, 2048)
    assert passes_run(Detector(detail=1), upscaled)[0] == (2048, 2048)  # forced sharp
    assert passes_run(Detector(detail=8), sharp)[0] == (512, 512)  # forced 8x upscaled: 2/8
    assert Detector(detail=4).detail_scale(sharp) == 4
    assert Detector(resize="single", detail=4).detail_scale(sharp) == 1  # single pass: not used
    for bad in (2, 3, "8", True):
        with pytest.raises(ValueError, match="detail must be"):
            Detector(detail=bad)


def test_turned_copies_take_the_originals_detail_scale(monkeypatch, portrait):
    import retinakit.detector as module

    measured = []

    def once(image, config):  # 4 for the first image measured, 1 for any other
        measured.append(image.shape[:2])
        return 4 if len(measured) == 1 else 1

    monkeypatch.setattr(module, "detail_scale", once)
    photo = np.zeros((2048, 2560, 3), np.uint8)
    shapes = passes_run(Detector(orientations=(0, 90, 180, 270)), photo)
    assert measured == [(2048, 2560)]  # the photo, once, not each turned copy
    # every angle runs the upscaled path: its first pass at 1/2 (1024 x 1280, or turned 1280 x 1024)
    firsts = [shape for shape in shapes if max(shape) == 1280]
    assert firsts == [(1024, 1280), (1280, 1024), (1024, 1280), (1280, 1024)]


def test_lone_faces_of_the_detail_view_by_hand():
    merged = faces([[0, 0, 400, 400]], [0.9])
    # the view at 1/4: sizes there 100, 50, 37.5, 125 and 120 px
    view = faces(
        [[10, 0, 410, 400], [1000, 0, 1200, 200], [2000, 0, 2150, 150], [3000, 0, 3500, 500], [0, 1000, 480, 1480]],
        [0.99, 0.95, 0.95, 0.7, 0.85],
    )
    config = ScaleConfig(handover=300, keep_max=450, lone_score=0.8, lone_iou=0.3)
    # 150 px (handover / 2) to 450 px in the view at 1/4: 600 to 1800 px here
    boxes = [[0, 1000, 700, 1700], [3000, 0, 3650, 650], [5000, 0, 7000, 2000], [0, 3000, 620, 3600]]
    big = faces(boxes, [0.9, 0.7, 0.95, 0.97])
    out = add_lone_faces(merged, (0.25, big), config, 0.5, 750)
    # kept: the 700 px face at 0.9 and the 620 x 600 one at 0.97 (no overlap); not the 650 px one
    # at 0.7 (< lone_score), nor the 2000 px one (500 px in the view, >= keep_max)
    np.testing.assert_allclose(out.scores, [0.97, 0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(out.boxes[0], [0, 3000, 620, 3600])
    # one overlapping a returned face (IoU >= 0.3) is not added
    assert len(add_lone_faces(faces([[0, 1000, 700, 1700]], [0.6]), (0.25, big[:1]), config, 0.5, 750)) == 1
    # nor one holding a returned face (a head box around it, IoU 0.18) or lying inside one
    around = faces([[0, 1000, 700, 1700]], [0.99])
    assert len(add_lone_faces(faces([[200, 1200, 500, 1500]], [0.9]), (0.25, around), config, 0.5, 750)) == 1
    assert len(add_lone_faces(faces([[-300, 700, 1000, 2000]], [0.9]), (0.25, around), config, 0.5, 750)) == 1
    # the size bound: 596 px (149 in the view) is not added, 604 px (151) is, both at 0.99
    sizes = faces([[0, 0, 596, 596], [1000, 0, 1604, 604]], [0.99, 0.99])
    assert add_lone_faces(Faces.empty(), (0.25, sizes), config, 0.5, 750).boxes.tolist() == [[1000, 0, 1604, 604]]
    assert len(add_lone_faces(merged, (0.25, view), config, 0.5, 750)) == 1  # all below 150 px in the view
    # the threshold holds: at 0.95 only the 0.97 face could be added; max_detections too
    assert add_lone_faces(Faces.empty(), (0.25, big), config, 0.95, 750).scores.tolist() == pytest.approx([0.97])
    assert add_lone_faces(merged, (0.25, big), config, 0.5, 1).scores.tolist() == pytest.approx([0.97])


def test_an_upscaled_photo_returns_a_face_only_its_detail_view_sees(monkeypatch):
    detector = Detector(precision="fp32")
    photo = np.zeros((2048, 2048, 3), np.uint8)
    monkeypatch.setattr("retinakit.detector.detail_scale", lambda image, config: 4)
    face = faces([[600, 600, 1400, 1400]], [0.95])  # 800 px: 200 px in the view at 1/4

    def passes(resized, frames, post=None):  # only the 512 px view (1/4, the detail scale) sees it
        return [face if resized[0].shape[0] == 512 else Faces.empty()]

    monkeypatch.setattr(detector, "_infer_or_split", passes)
    assert detector.detect_bgr([photo])[0].boxes.tolist() == [[600, 600, 1400, 1400]]
    detector._scales = ScaleConfig(lone_score=1.01)  # no lone faces: the first pass and the next miss it
    assert len(detector.detect_bgr([photo])[0]) == 0


def test_check_windows_by_hand():
    # a 64 px face, view at 1/2 (grid 64 px): grown by 64 on each side to (36, 36, 228, 228), on the grid
    assert check_windows(np.array([[100, 100, 164, 164]]), 0.5, 3000, 4000, CONFIG) == [(0, 0, 256, 256)]
    # a second face far away gets its own window; one that overlaps the first is merged into it
    far = np.array([[100, 100, 164, 164], [2000, 1000, 2064, 1064], [230, 100, 294, 164]])
    assert sorted(check_windows(far, 0.5, 3000, 4000, CONFIG)) == [(0, 0, 384, 256), (1920, 896, 2176, 1152)]
    assert check_windows(np.zeros((0, 4)), 0.5, 3000, 4000, CONFIG) == []
    assert check_windows(np.array([[4100, 10, 4164, 74]]), 0.5, 3000, 4000, CONFIG) == []  # off the image
    # windows over more than check_share (a quarter) of the image: the whole view instead
    assert check_windows(np.array([[500, 500, 1500, 1500]]), 0.5, 3000, 4000, CONFIG) is None


@pytest.fixture(scope="module")
def sharp_photo(portrait) -> np.ndarray:
    """2560 x 2560, detail down to its pixels (noise), with two portraits: a photo whose first pass is checked."""
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (2560, 2560, 3), dtype=np.uint8), (0, 0), 0.6)
    photo[200:712, 300:812] = portrait
    photo[1600:2112, 1700:2212] = portrait
    return photo


def test_a_sharp_photo_is_checked_in_windows_with_the_whole_views_result(detector, sharp_photo):
    assert detail_scale(sharp_photo, CONFIG) == 1
    windowed, shapes = detect_with_shapes(detector, sharp_photo)
    whole = Detector(precision="fp32")
    whole._scales = ScaleConfig(check_share=0.0)
    expected = whole.detect_bgr([sharp_photo])[0]
    assert len(windowed) == len(expected) == 2
    np.testing.assert_allclose(windowed.boxes, expected.boxes, atol=0.5)
    # first pass, the two coarser passes, then two windows at half size instead of the 1280 px view
    assert shapes[:3] == [(2560, 2560), (640, 640), (160, 160)] and len(shapes) == 5
    assert all(max(shape) < 640 for shape in shapes[3:])


def test_sharp_photos_are_checked_from_32_px_upscaled_ones_from_16(monkeypatch, sharp_photo):
    import retinakit.detector as module

    rules = []
    merge = module.merge_scales

    def spy(passes, rule, *args):
        rules.append(rule.verify_size)
        return merge(passes, rule, *args)

    monkeypatch.setattr(module, "merge_scales", spy)
    detector = Detector(precision="fp32")
    detector.detect_bgr([sharp_photo])
    monkeypatch.setattr(module, "detail_scale", lambda image, config: 4)
    detector.detect_bgr([sharp_photo])
    assert rules == [CONFIG.sharp_verify_size, CONFIG.verify_size] == [32, 16]


@pytest.fixture(scope="module")
def crowd(portrait) -> np.ndarray:
    """Faces from 10 to 40 px on a noisy canvas: found by some passes and not by others, as in a crowd."""
    rng = np.random.default_rng(0)
    canvas = rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)
    face = portrait[40:260, 150:330]
    for i, size in enumerate(np.linspace(10, 40, 24).astype(int)):
        y, x = 20 + (i // 6) * 110, 20 + (i % 6) * 100
        canvas[y : y + size, x : x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    return canvas


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    threshold=st.floats(0.05, 0.95),
    scales=st.sampled_from([(), (300,), (300, 500), (200, 400, 600)]),
    flip=st.booleans(),
    merge=st.sampled_from(["vote", "nms"]),
    orientations=st.sampled_from([(0,), (0, 180)]),
)
def test_no_returned_score_is_below_the_threshold(crowd, threshold, scales, flip, merge, orientations):
    detector = Detector(
        precision="fp32",
        score_threshold=threshold,
        scales=scales,
        flip=flip,
        merge=merge,
        orientations=orientations,
        tta_max_side=800,
    )
    for result in detector.detect_bgr([crowd, cv2.resize(crowd, (1280, 960))]):
        assert (result.scores >= threshold).all()


def test_tta_voting_gives_scores_below_the_threshold_that_the_detector_removes(crowd):
    """The case the threshold rule is for: consensus voting divides a face's score by the passes."""
    from retinakit.inference.tta import merge_passes, tta_passes

    detector = Detector(precision="fp32", score_threshold=0.5, scales=(300, 500, 700), flip=True)
    voted = merge_passes(tta_passes(detector, crowd, detector.config.tta_config), detector.config.tta_config, 750)
    assert (voted.scores < 0.5).any()  # voting alone returns them
    assert (detector.detect_bgr([crowd])[0].scores >= 0.5).all()
