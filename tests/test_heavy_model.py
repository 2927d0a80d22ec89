"""The heavy model with DCN learns: two real photos, random init, faces found after training.

Runs benchmarks/heavy_model.py's overfit (the script that also reports the figures): ResNet-50
with deformable convolutions in the FPN merges and context modules, 100 SGD steps at 320 px, then
save, load, export to ONNX (DeformConv) and detect with both the torch and ONNX Runtime backends.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import SHARED, need_shared  # noqa: E402


@pytest.mark.slow
def test_heavy_model_with_dcn_overfits_two_photos_and_finds_their_faces():
    need_shared("data", "widerface", "train-subset")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "heavy_model.py"
    spec = importlib.util.spec_from_file_location("heavy_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.overfit(SHARED, "resnet50", steps=100, size=320)
    assert result["deformable_layers"] == 2 + 5 * 3  # FPN merges + context modules
    assert result["max_abs_offset_weight"] > 0  # the deformation was learned, not left at zero
    assert result["loss_last"] <= 0.1 * result["loss_first"]
    for backend, found in result["faces_found"].items():
        for entry in found:
            hit, total = map(int, entry.split("/"))
            assert total > 0 and hit == total, (backend, found)
