"""The one training loop every task uses, with checkpoints, early stopping and logging."""

from encoderkit.training.loop import LoopResult, fit

__all__ = ["LoopResult", "fit"]
