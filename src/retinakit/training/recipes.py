"""Training recipes: the values a run takes for the settings it leaves unset (no PyTorch needed,
so the command line can show them without the ``torch`` extra)."""

from __future__ import annotations

from dataclasses import dataclass

PAPER_EPOCHS = 80


@dataclass(frozen=True)
class Recipe:
    """The values a :class:`TrainConfig` takes for the settings it leaves as None."""

    epochs: int
    lr: float
    warmup_lr: float
    warmup_epochs: float | None  # None: 5/80 of the epochs
    milestones: tuple[int, ...] | None  # None: 55/80 and 68/80 of the epochs
    loss: str
    freeze_bn: bool
    grad_clip: float | None
    batch_size: int


#: ``scratch``: the paper's schedule. ``finetune``: measured on the WIDER FACE training subset from
#: the built-in weights (docs/train.md gives the figures and the commands).
RECIPES = {
    "scratch": Recipe(PAPER_EPOCHS, 1e-2, 1e-3, None, None, "paper", False, None, 32),
    "finetune": Recipe(2, 1e-4, 1e-5, 0.25, (), "biubug6", False, 5.0, 4),
}
