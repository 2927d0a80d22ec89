"""Fine-tuning the built-in model on the WIDER FACE training subset: val-dev AP before and after.

    python benchmarks/finetune_recipe.py --out runs/finetune_seed0 --seed 0 [--set lr=1e-3 ...]

Runs ``retinakit train --init builtin`` with the default fine-tuning recipe (or the recipe with
``--set field=value`` overrides) on ``train-subset/label.txt``, validating on the val-dev images of
``benchmarks/valdev_quarter.txt`` (274 images, official WIDER protocol, original size), so the
trainer logs the AP before and after training and keeps the better weights. Then evaluates the
start and the kept weights on the quarter's images from the nine events the training subset is
drawn from (the subset's own kind of photos). Writes ``OUT/finetune.json`` (settings, loss curve,
AP figures) and prints a summary.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

from retinakit.detector import Detector
from retinakit.evaluation.wider import WiderGroundTruth, evaluate_wider, read_image_list
from retinakit.models.backend import TorchBackend
from retinakit.models.checkpoints import load_model
from retinakit.training.loop import TrainConfig, train

HERE = Path(__file__).resolve().parent
WIDER = HERE.parents[1] / "shared" / "data" / "widerface"
QUARTER = HERE / "valdev_quarter.txt"
TRAIN_EVENTS = ("0", "1", "2", "3", "4", "5", "13", "19", "20")


def same_event_ap(weights: Path | None, keys: list[str]) -> dict[str, float]:
    """WIDER AP (%) of weights (None: built-in) on ``keys`` (official protocol, original size)."""
    from retinakit.evaluation.run import run_detector_on_wider

    model = load_model(weights) if weights is not None else None
    backend = TorchBackend(model=model) if model is not None else TorchBackend()
    detector = Detector(score_threshold=0.02, max_side=None, backend_instance=backend)
    gt = WiderGroundTruth.from_mat_dir(WIDER / "ground_truth", keys)
    predictions, _, _ = run_detector_on_wider(detector, WIDER / "val-dev" / "images", list(gt.images))
    return {k: round(100 * v, 2) for k, v in evaluate_wider(predictions, gt).ap.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="TrainConfig overrides, field=value")
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    root = WIDER / "train-subset"
    config = TrainConfig(
        labels=str(root / "label.txt"),
        images=str(root / "images"),
        out=args.out,
        init="builtin",
        seed=args.seed,
        workers=0,
        log_every=10,
        val_images=str(WIDER / "val-dev" / "images"),
        val_ground_truth=str(WIDER / "ground_truth"),
        val_list=str(QUARTER),
        val_max_side=None,
        **overrides,
    )
    start = time.perf_counter()
    kept = train(config)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (Path(args.out) / "log.jsonl").read_text().splitlines()]
    keys = [k for k in read_image_list(QUARTER) if k.split("--")[0] in TRAIN_EVENTS]
    result = {
        "config": {k: v for k, v in config.resolved().__dict__.items() if not k.startswith("val_")},
        "seconds": round(seconds, 1),
        "loss_curve": [
            {k: r[k] for k in ("epoch", "step", "lr", "cls", "box", "landmarks", "total")}
            for r in records
            if "step" in r
        ],
        "validation": [r for r in records if "val_ap" in r or "best" in r],
        "same_events": {
            "images": len(keys),
            "builtin": same_event_ap(None, keys),
            "kept": same_event_ap(kept, keys),
            "trained": same_event_ap(Path(args.out) / "last.safetensors", keys),
        },
    }
    (Path(args.out) / "finetune.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("seconds", "validation", "same_events")}))
    for r in result["loss_curve"]:
        print(r)


if __name__ == "__main__":
    main()
