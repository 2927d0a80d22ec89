"""Shared fixtures: ../shared data (tests skip cleanly without it) and real photos from scikit-image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WIDER = SHARED / "data" / "widerface"


def need_shared(*parts: str) -> Path:
    """Path under ../shared, or skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def detector():
    """The float reference path (the default ``precision="auto"`` picks int8 on CPUs with int8 dot
    products; tests/test_fast_path.py checks that path against this one)."""
    from retinakit import Detector

    return Detector(precision="fp32")


@pytest.fixture(scope="session")
def torch_detector():
    pytest.importorskip("torch")
    from retinakit import Detector

    return Detector(backend="torch")


@pytest.fixture(scope="session")
def wider_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three real photos of different sizes with faces: val-dev images with several faces each, or,
    without ../shared, the astronaut photo at three sizes (so backend agreement is tested everywhere)."""
    root = WIDER / "val-dev" / "images"
    names = [
        "0--Parade/0_Parade_Parade_0_194.jpg",
        "0--Parade/0_Parade_Parade_0_102.jpg",
        "12--Group/12_Group_Group_12_Group_Group_12_10.jpg",
    ]
    paths = [root / n for n in names if (root / n).exists()]
    if len(paths) == len(names):
        return paths
    import cv2

    skimage_data = pytest.importorskip("skimage.data")
    bgr = skimage_data.astronaut()[:, :, ::-1]
    out = tmp_path_factory.mktemp("photos")
    variants = {"full.jpg": bgr, "wide.jpg": cv2.resize(bgr, (700, 400)), "crop.jpg": bgr[20:420, 60:380]}
    for name, image in variants.items():
        cv2.imwrite(str(out / name), image)
    return [out / name for name in variants]
