"""Short fine-tunes of the built-in model with one setting changed: val-dev AP after N steps.

    python benchmarks/finetune_causes.py NAME '{"lr": 1e-4, "warmup_lr": 1e-4}' [--steps 20]

Trains ``--init builtin`` on the WIDER FACE training subset (``label.txt``) for one epoch cut to
``--steps`` steps of 4 images (seed 0, no workers) with the given TrainConfig overrides (JSON),
then prints the official-protocol AP (easy / medium / hard, %) on the 274 val-dev images of
``benchmarks/valdev_quarter.txt`` (score > 0.02, long side at most 1024). A loss that stops being
finite is reported and the AP of the weights at that point is still measured. Used to find why
the old defaults destroyed the built-in model (docs/train.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from retinakit.detector import Detector
from retinakit.evaluation.run import wider_ap
from retinakit.models.backend import TorchBackend
from retinakit.training.loop import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
WIDER = HERE.parents[1] / "shared" / "data" / "widerface"


def quarter_ap(model: torch.nn.Module) -> dict[str, float]:
    detector = Detector(score_threshold=0.02, max_side=1024, backend_instance=TorchBackend(model=model))
    result = wider_ap(detector, WIDER / "val-dev" / "images", WIDER / "ground_truth", HERE / "valdev_quarter.txt")
    return {k: round(100 * v, 2) for k, v in result.ap.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("overrides", help="TrainConfig fields as JSON")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = TrainConfig(
        labels=str(WIDER / "train-subset" / "label.txt"),
        images=str(WIDER / "train-subset" / "images"),
        init="builtin",
        epochs=1,
        max_steps_per_epoch=args.steps,
        batch_size=4,
        workers=0,
        out=f"/tmp/finetune_causes/{args.name}",
        log_every=2,
        **json.loads(args.overrides),
    )
    trainer = Trainer(config)
    start = time.perf_counter()
    error = None
    try:
        trainer.run()
    except (FloatingPointError, ValueError) as exc:  # TrainingError is a ValueError
        error = str(exc)
    print(args.name, args.overrides, "error:", error, "train_s:", round(time.perf_counter() - start, 1))
    print(args.name, "AP", quarter_ap(trainer.model), flush=True)


if __name__ == "__main__":
    main()
