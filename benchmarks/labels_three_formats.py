"""A two-step fine-tune (seed 0) from the same two training-subset images as label.txt, COCO and YOLO.

    python benchmarks/labels_three_formats.py

Writes the two landmark images of WIDER FACE train-subset in each format with the converter, trains
``--init builtin`` for two steps of one 160 px image from each, and prints the logged losses.
"""

import json
import tempfile
from pathlib import Path

from retinakit.io.labels import LabelSet, read_labels, write_labels
from retinakit.training.loop import TrainConfig, train

R = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface" / "train-subset"
TWO = ("1--Handshaking/1_Handshaking_Handshaking_1_483.jpg", "1--Handshaking/1_Handshaking_Handshaking_1_666.jpg")
t = Path(tempfile.mkdtemp())
full = read_labels(R / "label.txt")
two = LabelSet(full.source, full.format, full.root, [a for a in full.images if a.image in TWO])
write_labels(two, "retinaface", t / "label.txt")
write_labels(two, "coco", t / "two.json")
write_labels(two, "yolo", t / "yolo")
for name, path, images in (
    ("label.txt", t / "label.txt", str(R / "images")),
    ("coco", t / "two.json", str(R / "images")),
    ("yolo", t / "yolo" / "data.yaml", None),
):
    cfg = TrainConfig(
        labels=str(path),
        images=images,
        out=str(t / ("run_" + name)),
        init="builtin",
        epochs=1,
        batch_size=1,
        image_size=160,
        workers=0,
        log_every=1,
        unfold_batches=1,
        max_steps_per_epoch=2,
        device="cpu",
        seed=0,
    )
    train(cfg)
    recs = [
        json.loads(line) for line in (t / ("run_" + name) / "log.jsonl").read_text().splitlines() if '"step"' in line
    ]
    print(name, [{k: r[k] for k in ("step", "cls", "box", "landmarks", "total")} for r in recs])
