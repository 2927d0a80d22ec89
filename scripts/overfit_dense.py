"""Overfit check of the dense branch: from random initialisation, fit the branch on one real face
crop by the pixel loss alone and save crop / rendering / overlay pictures.

The detector part is the built-in model (frozen); the dense head and mesh decoder start random.
The face is the one the built-in detector finds in the image (default: scikit-image's
astronaut); its best-overlapping anchor is the one whose parameters are trained.

    PYTHONPATH=src python scripts/overfit_dense.py --out docs/images
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from retinakit import Detector, read_image
from retinakit.config import get_preset
from retinakit.core.anchors import generate_anchors
from retinakit.core.boxes import box_convert, box_iou
from retinakit.inference.preprocess import to_bgr
from retinakit.models import build_model
from retinakit.models.checkpoints import read_weights
from retinakit.models.dense.pixel_loss import crop_boxes, pixel_loss, to_rgb01
from retinakit.models.dense.renderer import RenderConfig


def to_png(rgb01: torch.Tensor, scale: int) -> np.ndarray:
    """``(3, S, S)`` RGB in [0, 1] -> BGR uint8, enlarged ``scale`` times (nearest)."""
    image = (rgb01.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return cv2.resize(image[:, :, ::-1], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="image with one main face (default: scikit-image astronaut)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam, cosine decay to 0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    if args.image:
        bgr = read_image(args.image)
    else:
        import skimage.data

        bgr = to_bgr(skimage.data.astronaut(), color="rgb")
    faces = Detector()(bgr, color="bgr")
    box = faces.boxes[int(np.argmax(faces.widths * faces.heights))]

    config = replace(get_preset("mobilenet0.25"), dense=True)
    model = build_model(config)
    from retinakit.inference.backends import builtin_weights

    state, _ = read_weights(builtin_weights("safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("dense.") for k in missing)
    model.eval()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("dense."))

    h, w = bgr.shape[:2]
    mean = np.array(config.input.mean, np.float32)
    images = torch.from_numpy((bgr.astype(np.float32) - mean).transpose(2, 0, 1).copy())[None]
    anchors = torch.from_numpy(generate_anchors(config.anchors, h, w).copy())
    box_t = torch.from_numpy(box.astype(np.float32))[None]
    anchor = int(box_iou(box_t, box_convert(anchors, "cxcywh", "xyxy"))[0].argmax())

    render = RenderConfig()
    with torch.no_grad():
        feats = model.fpn(model.backbone(images))
        feats = [ctx(f) for ctx, f in zip(model.context, feats, strict=True)]
        crop = crop_boxes(to_rgb01(images, config.input), torch.tensor([0]), box_t, render.size)
    background = crop.mean(dim=(2, 3))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    history = []
    tick = time.perf_counter()
    for _ in range(args.steps):
        params = model.dense(feats)[:, anchor]
        rendered, _ = model.dense.render(params, background)
        loss = pixel_loss(rendered, crop)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(loss.item())
    elapsed = time.perf_counter() - tick
    with torch.no_grad():
        params = model.dense(feats)[:, anchor]
        final, mask = model.dense.render(params, background)
        final_loss = float(pixel_loss(final, crop))
        model.dense.render_config = RenderConfig(size=128)
        sharp, _ = model.dense.render(params, torch.ones_like(background))
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 8
    overlay = 0.5 * crop[0] + 0.5 * final[0]
    cv2.imwrite(str(args.out / "dense_crop.png"), to_png(crop[0], scale))
    cv2.imwrite(str(args.out / "dense_render.png"), to_png(final[0], scale))
    cv2.imwrite(str(args.out / "dense_overlay.png"), to_png(overlay, scale))
    cv2.imwrite(str(args.out / "dense_render_128.png"), to_png(sharp[0], 2))
    strip = np.concatenate([to_png(crop[0], scale), to_png(final[0], scale), to_png(overlay, scale)], 1)
    cv2.imwrite(str(args.out / "dense_overfit.png"), strip)
    drop = 1 - final_loss / history[0]
    print(
        f"face box {np.round(box, 1).tolist()}, anchor {anchor}; L_pixel {history[0]:.4f} -> {final_loss:.4f} "
        f"({100 * drop:.1f} % lower) in {args.steps} Adam steps ({elapsed:.1f} s); "
        f"mask coverage {float(mask.mean()):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
