"""Learning-rate schedules: inverse-sqrt with warm-up, reduce-on-plateau, constant, linear decay."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer


class LRSchedule:
    """Sets the optimizer's learning rate after every update and every validation.

    - ``inverse_sqrt``: linear warm-up to ``lr`` over ``warmup_steps``, then lr * sqrt(warmup / step).
    - ``plateau``: linear warm-up, then constant; multiplied by ``factor`` whenever the
      validation metric has not improved for ``patience`` validations (never below ``min_lr``).
    - ``constant``: linear warm-up, then constant.
    - ``linear``: linear warm-up, then a straight line from ``lr`` down to ``min_lr`` at
      update ``total_steps`` (train.max_steps).

    A parameter group with an ``lr_scale`` entry gets ``lr_scale`` times the schedule's rate
    (train.encoder_lr_scale: a lower rate for a pretrained encoder).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        kind: str,
        lr: float,
        warmup_steps: int = 0,
        factor: float = 0.5,
        patience: int = 2,
        min_lr: float = 0.0,
        total_steps: int = 0,
    ) -> None:
        if kind not in ("inverse_sqrt", "plateau", "constant", "linear"):
            raise ValueError(f"unknown scheduler {kind!r}")
        if kind == "linear" and total_steps <= warmup_steps:
            raise ValueError("the linear schedule needs total_steps (train.max_steps) above warmup_steps")
        self.total_steps = total_steps
        self.optimizer = optimizer
        self.kind = kind
        self.base_lr = lr
        self.warmup_steps = max(0, warmup_steps)
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.plateau_scale = 1.0  # product of the plateau reductions so far
        self.best: float | None = None
        self.bad_validations = 0
        self.lr = self._lr_at(0)
        self._apply()

    def _lr_at(self, step: int) -> float:
        """Learning rate for update number ``step + 1`` (step = updates done so far)."""
        s = step + 1
        if self.warmup_steps and s < self.warmup_steps:
            return self.base_lr * s / self.warmup_steps
        if self.kind == "inverse_sqrt" and self.warmup_steps:
            return self.base_lr * math.sqrt(self.warmup_steps / s)
        if self.kind == "plateau":
            return max(self.min_lr, self.base_lr * self.plateau_scale)
        if self.kind == "linear":
            left = max(0.0, (self.total_steps - s) / max(1, self.total_steps - self.warmup_steps))
            return self.min_lr + (self.base_lr - self.min_lr) * min(1.0, left)
        return self.base_lr

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_scale", 1.0)

    def step_update(self, step: int) -> float:
        """Call after each optimizer update; ``step`` = updates done so far."""
        self.lr = self._lr_at(step)
        self._apply()
        return self.lr

    def step_validation(self, metric: float, higher_is_better: bool, step: int) -> None:
        """Call after each validation (only the plateau schedule reacts)."""
        if self.kind != "plateau":
            return
        improved = self.best is None or (metric > self.best if higher_is_better else metric < self.best)
        if improved:
            self.best = metric
            self.bad_validations = 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.plateau_scale *= self.factor
            self.bad_validations = 0
            self.lr = self._lr_at(step)
            self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_validations": self.bad_validations,
            "lr": self.lr,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_validations = int(state["bad_validations"])
        self.lr = float(state["lr"])
        self._apply()


def kl_weight(step: int, schedule: str, anneal_steps: int, max_weight: float = 1.0) -> float:
    """Weight of the KL term at update ``step`` (variational autoencoders, Bowman et al. 2016).

    - ``linear``: rises from 0 to ``max_weight`` over ``anneal_steps`` updates;
    - ``logistic``: ``max_weight / (1 + exp(-k (step - anneal_steps / 2)))`` with
      ``k = 10 / anneal_steps``: about 0.7% of the maximum at step 0, half at the midpoint,
      99.3% at ``anneal_steps``;
    - ``constant``: ``max_weight`` from the start (no annealing).
    """
    if schedule == "constant":
        return max_weight
    if schedule == "linear":
        return max_weight * min(1.0, step / max(1, anneal_steps))
    if schedule == "logistic":
        x = 10.0 / max(1, anneal_steps) * (step - anneal_steps / 2)
        return max_weight / (1.0 + math.exp(-max(-50.0, min(50.0, x))))
    raise ValueError(f"unknown KL schedule '{schedule}' (linear, logistic or constant)")
