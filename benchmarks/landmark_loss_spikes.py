"""Landmark loss of the built-in model on augmented samples of the 21 landmark images of train-subset.

    python benchmarks/landmark_loss_spikes.py flip|noflip crop|nocrop

Forward passes only (eval mode), ``biubug6`` loss, two epochs of seeded augmentation at 640 px.
Prints the median, mean and largest per-sample landmark losses, with how many faces of each sample
have a landmark outside their (cropped) box: to see where landmark-loss spikes come from.
"""

import sys

import numpy as np
import torch

from retinakit.config import get_preset
from retinakit.core.anchors import generate_anchors
from retinakit.inference.backends import builtin_weights
from retinakit.io.labels import read_labels
from retinakit.models.checkpoints import load_model
from retinakit.training.augment import AugmentConfig
from retinakit.training.dataset import FaceDataset
from retinakit.training.loss import MultiTaskLoss, get_loss_preset

torch.set_num_threads(1)
R = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface" / "train-subset")
labels = read_labels(R + "/label.txt")
anns = [a for a in labels.images if a.has_landmarks.any()]
cfg = get_preset("mobilenet0.25")

flip = sys.argv[1] == "flip"
ds = FaceDataset(anns, labels.root, AugmentConfig(size=640, flip=flip, crop=sys.argv[2] == "crop"), cfg.input, seed=0)
model = load_model(builtin_weights("safetensors")).eval()
anchors = torch.from_numpy(generate_anchors(cfg.anchors, 640, 640).copy())
crit = MultiTaskLoss(get_loss_preset("biubug6"), cfg.anchors.variances)
rows = []
for epoch in range(2):
    ds.set_epoch(epoch)
    for i in range(len(ds)):
        img, t = ds[i]
        if not t["has_landmarks"].any():
            continue
        with torch.no_grad():
            raw = model(img[None])
        loss = crit(raw, [t], anchors)["landmarks"].item()
        b = t["boxes"][t["has_landmarks"]]
        p = t["landmarks"][t["has_landmarks"]]
        outside = (
            (p[..., 0] < b[:, None, 0])
            | (p[..., 0] > b[:, None, 2])
            | (p[..., 1] < b[:, None, 1])
            | (p[..., 1] > b[:, None, 3])
        ).any(1)
        rows.append((loss, int(outside.sum()), len(b)))
rows.sort(reverse=True)
print(
    "n samples",
    len(rows),
    "mean lm loss",
    np.mean([r[0] for r in rows]).round(3),
    "median",
    np.median([r[0] for r in rows]).round(3),
)
print(
    "top 8 (loss, faces with a landmark outside its box, faces with landmarks):",
    [(round(r[0], 2), r[1], r[2]) for r in rows[:8]],
)
print(
    "samples with an outside face: mean loss",
    np.mean([r[0] for r in rows if r[1]]).round(3) if any(r[1] for r in rows) else None,
    "n",
    sum(1 for r in rows if r[1]),
)
print("samples without: mean loss", np.mean([r[0] for r in rows if not r[1]]).round(3))
