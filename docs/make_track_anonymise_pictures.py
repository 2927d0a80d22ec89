"""The README pictures of tracking and anonymization (scikit-image photos, public domain).

    python docs/make_track_anonymise_pictures.py

writes docs/images/anonymise_still.jpg, track_crossing.jpg and anonymise_video.jpg.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

from retinakit import Detector
from retinakit.apps.track import FaceTracker, TrackerConfig
from retinakit.ops.masks import AnonymizeConfig, anonymize_image

OUT = Path(__file__).resolve().parent / "images"
THRESHOLD = 0.3


def save(name: str, image: np.ndarray, scale: float) -> None:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(OUT / name), small, [cv2.IMWRITE_JPEG_QUALITY, 85])


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 26), (0, 0, 0), -1)
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), (0, 0, 0), 1)
    cv2.putText(out, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_ids(image: np.ndarray, boxes: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    out = image.copy()
    colors = [(0, 200, 255), (255, 120, 0), (0, 220, 0)]
    for k, box in enumerate(boxes):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        color = colors[(int(ids[k]) - 1) % 3] if ids is not None else (200, 200, 200)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2, cv2.LINE_AA)
        if ids is not None:
            cv2.putText(out, f"id {ids[k]}", (x1, y1 - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.8, color, 2, cv2.LINE_AA)
    return out


def faces_bgr() -> tuple[np.ndarray, np.ndarray]:
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[20:240, 120:320, ::-1])
    camera = cv2.cvtColor(skimage.data.camera()[60:280, 140:340], cv2.COLOR_GRAY2BGR)
    return astronaut, camera


def still(detector: Detector) -> None:
    astronaut, camera = faces_bgr()
    photo = np.concatenate([astronaut, camera], axis=1)
    faces = detector.detect_bgr([photo])[0]
    faces = faces[faces.scores >= THRESHOLD]
    panels = [label(photo, "input")]
    for method in ("blur", "pixelate", "solid"):
        hidden = anonymize_image(photo, faces.boxes, AnonymizeConfig(method=method))
        panels.append(label(hidden, f"--method {method}"))
    grid = np.concatenate([np.concatenate(panels[:2], 1), np.concatenate(panels[2:], 1)], 0)
    save("anonymise_still.jpg", grid, 0.75)


def crossing_frames(n: int) -> list[np.ndarray]:
    astronaut, camera = faces_bgr()
    a, c = cv2.resize(astronaut, (120, 132)), cv2.resize(camera, (120, 132))
    frames = []
    for t in range(n):
        frame = np.full((240, 480, 3), 110, np.uint8)
        xa, xc = 20 + round(300 * t / (n - 1)), 340 - round(300 * t / (n - 1))
        frame[40:172, xc : xc + 120] = c
        frame[70:202, xa : xa + 120] = a  # the astronaut passes in front
        frames.append(frame)
    return frames


def crossing(detector: Detector) -> None:
    n, shown = 25, (4, 11, 13, 20)
    tracker = FaceTracker(TrackerConfig(high_threshold=0.5))
    top, bottom = [], []
    for t, frame in enumerate(crossing_frames(n)):
        faces = detector.detect_bgr([frame])[0]
        tracked = tracker.update(faces)
        if t in shown:
            plain = faces[faces.scores >= 0.5]
            top.append(label(draw_ids(frame, plain.boxes, None), f"frame {t}: detections"))
            seen = tracked.faces.boxes, tracked.track_ids
            bottom.append(label(draw_ids(frame, *seen), f"frame {t}: tracked"))
    grid = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    save("track_crossing.jpg", grid, 0.6)


def occluded_frames(n: int) -> list[np.ndarray]:
    """The astronaut walking right while a pole (the occluder) crosses in front from the right."""
    astronaut, _ = faces_bgr()
    face = cv2.resize(astronaut, (160, 176))
    frames = []
    for t in range(n):
        frame = np.full((240, 400, 3), 110, np.uint8)
        x = 60 + 4 * t
        frame[30:206, x : x + 160] = face
        pole = 380 - 14 * t
        frame[:, max(0, pole) : max(0, pole + 110)] = (60, 120, 170)
        frames.append(frame)
    return frames


def occlusion(detector: Detector) -> None:
    n = 24
    config = AnonymizeConfig()
    tracker = FaceTracker(TrackerConfig(high_threshold=THRESHOLD, low_threshold=0.1))
    rows: list[list[np.ndarray]] = [[], []]
    scores = []
    for t, frame in enumerate(occluded_frames(n)):
        faces = detector.detect_bgr([frame])[0]
        scores.append(float(faces.scores.max()) if len(faces) else 0.0)
        plain = faces[faces.scores >= THRESHOLD]
        tracked = tracker.update(faces)
        if t in (12, 14, 15, 16):
            rows[0].append(label(anonymize_image(frame, plain.boxes, config), f"frame {t}: frame by frame"))
            rows[1].append(label(anonymize_image(frame, tracked.faces.boxes, config), f"frame {t}: tracked"))
    grid = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    save("anonymise_video.jpg", grid, 0.6)
    print("best score per frame:", [round(s, 2) for s in scores])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    detector = Detector(score_threshold=0.1)
    still(detector)
    crossing(detector)
    occlusion(detector)


if __name__ == "__main__":
    main()
