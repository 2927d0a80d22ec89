"""The API, `retinakit detect`, `retinakit batch` and `retinakit serve` return the same faces for the same options."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from retinakit import Detector

OPTIONS = [
    ({}, []),
    (
        {"score_threshold": 0.6, "scales": (300, 500), "flip": True},
        ["--threshold", "0.6", "--scales", "300,500", "--flip"],
    ),
    ({"orientations": (0, 180), "score_threshold": 0.4}, ["--orientations", "0,180", "--threshold", "0.4"]),
    ({"resize": "single", "max_side": 400}, ["--resize", "single", "--max-side", "400"]),
    ({"flip": True, "score_threshold": 0.6}, ["--flip", "--threshold", "0.6"]),  # each pass of the ladder mirrored
]


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_rgb):
    """A 900x1200 photo: the astronaut large, and small copies of the face on a noisy canvas."""
    rng = np.random.default_rng(1)
    canvas = rng.integers(60, 200, (900, 1200, 3), dtype=np.uint8)
    canvas[:512, :512] = astronaut_rgb[:, :, ::-1]
    face = astronaut_rgb[40:260, 150:330, ::-1]
    for i, size in enumerate(range(14, 60, 4)):
        y, x = 560 + (i // 6) * 150, 560 + (i % 6) * 100
        canvas[y : y + size, x : x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("agree") / "photo.png"
    cv2.imwrite(str(path), canvas)
    return path


@pytest.mark.parametrize(("options", "flags"), OPTIONS)
def test_cli_detect_returns_the_api_faces(photo, tmp_path, options, flags):
    from retinakit.cli import main

    expected = Detector(precision="fp32", **options)(photo).to_list()
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(photo), "-o", str(out), "--precision", "fp32", "--no-progress", *flags]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["faces"] == expected
    threshold = options.get("score_threshold", 0.5)
    assert all(face["score"] >= threshold for face in record["faces"])


@pytest.mark.parametrize(("options", "flags"), OPTIONS[:2])
def test_batch_returns_the_api_faces(photo, tmp_path, options, flags):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from retinakit.apps.batch import BatchConfig, run_batch
    from retinakit.detector import DetectorConfig

    expected = Detector(precision="fp32", **options)(photo)
    config = BatchConfig(
        source=str(photo.parent), output=str(tmp_path / "out"), detector=DetectorConfig(precision="fp32", **options)
    )
    run_batch(config)
    (row,) = pq.read_table(next((tmp_path / "out").glob("*.parquet"))).to_pylist()
    assert row["boxes"] == expected.boxes.tolist() and row["scores"] == expected.scores.tolist()


@pytest.mark.parametrize(
    ("options", "query"),
    [
        ({"score_threshold": 0.6}, "threshold=0.6&max_side=0"),
        ({"score_threshold": 0.6, "scales": (300, 500), "flip": True}, "threshold=0.6&max_side=0&tta=true"),
        ({"score_threshold": 0.5, "orientations": (0, 180)}, "threshold=0.5&max_side=0&orientations=0,180"),
    ],
)
def test_serve_returns_the_api_faces(photo, options, query):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from retinakit.apps.serve import ServeConfig, create_app
    from retinakit.detector import DetectorConfig

    expected = Detector(precision="fp32", **options)(photo).to_list()
    config = ServeConfig(detector=DetectorConfig(precision="fp32", score_threshold=0.3), tta_scales=(300, 500))
    with TestClient(create_app(config, detector=Detector(config.detector))) as client:
        response = client.post(f"/v1/detect?{query}", content=photo.read_bytes())
    assert response.status_code == 200, response.text
    faces = response.json()["faces"]
    assert [f["box"] for f in faces] == [e["box"] for e in expected]
    assert [f["score"] for f in faces] == [e["score"] for e in expected]
    assert [f.get("angle") for f in faces] == [e.get("angle") for e in expected]
