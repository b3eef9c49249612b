"""One update: the micro-batches of gradient accumulation, then one optimizer step.

Each micro-batch is read from the token store, noised by the objective, split across the ranks,
and run forward (the objective's loss) and backward; gradients are sums over tokens. After
``train.accumulate`` micro-batches, :meth:`Stepper.update` turns the sums into a per-token mean,
clips it and steps the optimizer and the schedule, or skips the update when the loss or the
gradient is not finite (the parameters never see the bad values).

With several processes the loss runs as the ``forward`` of :class:`LossModule` wrapped in
``DistributedDataParallel``, which all-reduces the gradients in the last micro-batch's backward.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from seq2seq.config import Config
from seq2seq.data.batching import Batch, collate
from seq2seq.data.store import StoreExamples
from seq2seq.errors import Seq2SeqError
from seq2seq.models import Composite
from seq2seq.train.distributed import Distributed
from seq2seq.train.freeze import train_mode
from seq2seq.train.logbook import JsonlLog, LossWindow
from seq2seq.train.objectives import Objective, StepLoss
from seq2seq.train.schedules import LRSchedule
from seq2seq.train.state import TrainState

log = logging.getLogger("seq2seq.train")


class LossModule(torch.nn.Module):
    """The objective's loss on a batch as the ``forward`` of one module, for
    ``DistributedDataParallel`` to wrap (DDP starts by broadcasting rank 0's weights)."""

    def __init__(self, objective: Objective, model: Composite) -> None:
        super().__init__()
        self.objective = objective
        self.model = model

    def forward(self, batch: Batch, label_smoothing: float, step: int) -> StepLoss:
        return self.objective.loss(self.model, batch, label_smoothing, step)


class Stepper:
    """Turns batches of the training data into updates of ``model``: :meth:`micro_batch` for
    each batch, :meth:`update` once :attr:`ready`. It puts ``model`` in training mode (frozen
    parts stay in eval mode), counts in ``state`` (``batches_done``, ``step``,
    ``skipped_updates``), sums the loss figures into ``window`` and writes skipped updates to
    ``logbook``; ``last`` is the checkpoint a diverged run names as the last good one.
    """

    def __init__(
        self,
        cfg: Config,
        objective: Objective,
        model: Composite,
        optimizer: torch.optim.Optimizer,
        schedule: LRSchedule,
        data: StoreExamples,
        targets: Optional[np.ndarray],
        state: TrainState,
        dist: Distributed,
        device: torch.device,
        logbook: JsonlLog,
        last: Path,
    ) -> None:
        self.t = cfg.train
        self.objective, self.model, self.optimizer, self.schedule = objective, model, optimizer, schedule
        self.data, self.targets, self.state = data, targets, state
        self.dist, self.device, self.logbook, self.last = dist, device, logbook, last
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.engine = self._ddp_engine()
        train_mode(model)
        self.window = LossWindow()
        self.micro, self.accumulated_tokens, self.bad_loss, self.bad_in_a_row = 0, 0, False, 0

    def _ddp_engine(self) -> Optional[torch.nn.Module]:
        """With several processes: the loss as one module's forward, which DDP wraps."""
        if not self.dist.active:
            return None
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            LossModule(self.objective, self.model),
            find_unused_parameters=True,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
        )

    @property
    def ready(self) -> bool:
        """Whether the micro-batches of one update are in (``train.accumulate``)."""
        return self.micro >= self.t.accumulate

    def micro_batch(self, positions: list[int]) -> None:
        """One micro-batch: loss, backward (gradients are sums over tokens), window sums."""
        t, s, dist = self.t, self.state, self.dist
        chosen = self.objective.noise(self.data.examples(positions), s.epoch, s.batches_done)  # read from the store
        mine = dist.shard(chosen)  # this rank's sentences of the global batch (all of it alone)
        out: StepLoss
        if dist.active:
            # DDP: every rank takes part in every backward (its gradient all-reduce). A rank left
            # without a sentence runs one with weight 0; the all-reduce of the accumulated
            # gradients happens on the last micro-batch only.
            batch = collate(mine or chosen[:1], self.targets).to(self.device)
            with nullcontext() if self.micro + 1 == t.accumulate else self.engine.no_sync():
                out = self.engine(batch, t.label_smoothing, s.step)
                loss_value = float(out.loss.detach()) if mine else 0.0
                (out.loss * (1.0 if mine else 0.0)).backward()  # NaN too: all ranks must reduce
        else:
            batch = collate(mine, self.targets).to(self.device)
            out = self.objective.loss(self.model, batch, t.label_smoothing, s.step)
            loss_value = float(out.loss.detach())
            if math.isfinite(loss_value):
                out.loss.backward()
        if mine and math.isfinite(loss_value):
            self.window.add(out, loss_value, len(batch))
        elif mine:
            self.bad_loss = True  # the update is skipped
        self.accumulated_tokens += out.n if mine else 0
        self.micro += 1
        s.batches_done += 1

    def update(self) -> torch.Tensor:
        """One optimizer step on the accumulated gradients (skipped when non-finite); returns the
        gradient norm."""
        t, dist = self.t, self.dist
        scale = 1.0
        if dist.active:  # DDP averaged the ranks' gradient sums; tokens and faults: sum them too
            self.accumulated_tokens = round(dist.sum_scalar(self.accumulated_tokens))
            self.bad_loss = dist.sum_scalar(float(self.bad_loss)) > 0
            scale = float(dist.world)
        # Gradients were summed over tokens; make them a per-token mean.
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, scale / max(1, self.accumulated_tokens))
        norm = torch.nn.utils.clip_grad_norm_(self.params, t.clip_norm if t.clip_norm > 0 else float("inf"))
        if not self.bad_loss and torch.isfinite(norm):
            self.optimizer.step()
            self.bad_in_a_row = 0
        else:
            self.bad_in_a_row += 1
            self._skip("loss" if self.bad_loss else "gradient")
        self.optimizer.zero_grad(set_to_none=True)
        self.micro, self.accumulated_tokens, self.bad_loss = 0, 0, False
        self.state.step += 1
        self.schedule.step_update(self.state.step)
        return norm

    def _skip(self, what: str) -> None:
        """Count and log an update skipped for a non-finite loss or gradient; stop after
        ``train.max_bad_updates`` in a row (the parameters never saw the bad values)."""
        s, in_a_row = self.state, self.bad_in_a_row
        s.skipped_updates += 1
        step = s.step + 1
        self.logbook.write(
            event="skipped",
            step=step,
            reason=f"non-finite {what}",
            in_a_row=in_a_row,
            skipped_updates=s.skipped_updates,
        )
        log.warning(
            "non-finite %s at update %d: update skipped (%d in a row, %d in all)",
            what,
            step,
            in_a_row,
            s.skipped_updates,
        )
        limit = self.t.max_bad_updates
        if in_a_row >= limit:
            raise Seq2SeqError(
                f"training diverged: {in_a_row} updates in a row had a non-finite {what} (train.max_bad_updates="
                f"{limit}, last at update {step}). The last good checkpoint is {self.last}. Lower "
                "train.lr or raise train.warmup_steps, check the data, or use train.precision=fp32; then "
                "--resume or start again"
            )
