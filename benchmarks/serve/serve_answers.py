"""The raw JSON answers of ``create_app(ServeConfig())`` (the default server) on sample images, for a diff.

    PYTHONPATH=src python benchmarks/serve/serve_answers.py > new.txt
    PYTHONPATH=OTHER/src python benchmarks/serve/serve_answers.py > old.txt && cmp old.txt new.txt

Posts the astronaut photo (PNG) and 6 val-dev photos (every 200th, from ../shared when present) to
``/v1/detect`` with 6 option sets and to ``/v1/align`` as a multipart form; prints one line per answer:
image, query, status and the body's bytes with the ``time_ms`` value replaced by ``T``. Not a test.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
SHARED_CANDIDATES = [ROOT.parent / "shared", ROOT.parents[1] / "shared"]
QUERIES = ["", "?threshold=0.8", "?landmarks=false", "?max_side=640", "?max_side=0", "?crops=true&crop_size=64"]


def samples() -> list[tuple[str, bytes]]:
    import skimage.data

    out = [("astronaut.png", cv2.imencode(".png", skimage.data.astronaut()[:, :, ::-1])[1].tobytes())]
    for shared in SHARED_CANDIDATES:
        root = shared / "data" / "widerface" / "val-dev" / "images"
        if root.is_dir():
            out += [(f.name, f.read_bytes()) for f in sorted(root.glob("*/*.jpg"))[::200][:6]]
            break
    return out


def main() -> None:
    from fastapi.testclient import TestClient

    import retinakit
    from retinakit.apps.serve import ServeConfig, create_app

    print(f"serving {retinakit.__file__}", file=sys.stderr)
    with TestClient(create_app(ServeConfig())) as c:
        while c.get("/readyz").status_code != 200:
            time.sleep(0.1)
        for name, data in samples():
            answers = [(q, c.post("/v1/detect" + q, content=data)) for q in QUERIES]
            form = {"image": (name, data, "image/jpeg")}
            answers.append(("align-multipart", c.post("/v1/align", files=form, data={"options": '{"crop_size": 96}'})))
            for query, r in answers:
                body = re.sub(rb'"time_ms":[0-9.e-]+', b'"time_ms":T', r.content).decode()
                print(name, query or "-", r.status_code, body)


if __name__ == "__main__":
    main()
