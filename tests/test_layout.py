"""The package boundary: inference, I/O, evaluation and the apps need no PyTorch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED_RUN = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())

    import numpy as np
    import retinakit
    from retinakit import Detector

    imported = []
    for package in ("retinakit.inference", "retinakit.io", "retinakit.evaluation", "retinakit.apps"):
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            importlib.import_module(info.name)
            imported.append(info.name)
    importlib.import_module("retinakit.cli")
    image = np.zeros((120, 160, 3), np.uint8)
    faces = Detector()(image, color="bgr")
    assert len(faces) == 0, faces
    assert "torch" not in sys.modules
    print(len(imported), "modules")
    """
)


def test_inference_io_evaluation_run_without_torch() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKED_RUN], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) >= 10  # the walk really imported the torch-free modules


def test_blocker_really_blocks_torch() -> None:
    code = BLOCKED_RUN.split("import numpy")[0] + "import retinakit.models.retinaface\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "torch is blocked" in done.stderr
