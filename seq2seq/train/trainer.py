"""The training loop. ``Trainer(cfg).fit()`` wires the parts and runs it.

``build.py`` makes the parts (data, tokenizers, model, optimizer). One update, through five
files: this loop hands each batch to ``step.py``, which runs the task's
:class:`~seq2seq.train.objectives.Objective` (``objectives.py``, the token loss in ``losses.py``)
forward and backward and, every ``train.accumulate`` batches, steps the optimizer; the loop then
logs (``logbook.py``), validates (``validation.py``) and saves: ``rundir.py`` writes the
checkpoints (``best/``, ``last/``, ``step-N/``).

The training split is tokenized once into a token store (``data/store.py``, built when missing
by the first rank of each machine) and never held in memory: the batch sampler works on its
length arrays, and each batch's ids are read from disk when it is trained on.

Resuming (``--resume``) restores the model, optimizer, schedule, RNG streams, and the
position inside the epoch's batch order (which depends only on the seed and the epoch), so
a run killed at any moment and resumed ends with the same parameters, bit for bit on CPU, as
one that was never interrupted. Ctrl-C (SIGINT) or SIGTERM finish the current update, save
``last/`` and stop; a second Ctrl-C aborts at once (``last/`` is still the previous save).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from tqdm.auto import tqdm

from seq2seq.config import Config
from seq2seq.data.batching import Batch
from seq2seq.errors import Seq2SeqError
from seq2seq.runtime import limit_onednn_cache
from seq2seq.train import build
from seq2seq.train.logbook import JsonlLog, StopRequests, log_train, log_valid, progress_bar
from seq2seq.train.objectives import Objective, choose_objective
from seq2seq.train.rundir import RunDir
from seq2seq.train.state import TrainState, resume_from, set_seed, trainer_state
from seq2seq.train.step import Stepper
from seq2seq.train.validation import Validator

log = logging.getLogger("seq2seq.train")


@dataclass
class TrainResult:
    output_dir: Path
    best_score: Optional[float]
    metric: str
    steps: int
    seconds: float


class Trainer:
    """Trains a model as described by a :class:`Config` (see the module docstring).

    ``objective``: what to optimise; by default the one of ``cfg.task`` and ``cfg.train.stage``
    (:func:`~seq2seq.train.objectives.choose_objective`).
    """

    def __init__(self, cfg: Config, resume: bool = False, objective: Optional[Objective] = None) -> None:
        limit_onednn_cache()  # before the first oneDNN kernel of a training process
        self.cfg = cfg
        self.resume = resume
        self.run_dir = RunDir(cfg.train.output_dir)
        self.out = self.run_dir.path
        self.device, self.dist, self.autocast = build.runtime(cfg)
        self.objective = objective or choose_objective(cfg, self.autocast)
        self.validator = Validator(cfg, self.objective, self.device, self.autocast)
        self.state = TrainState()
        self.source_limits: dict[str, int] = {}  # what the training sources were like (see data/domain.py)

    # ------------------------------------------------------------------ set-up
    def fit(self) -> TrainResult:
        """Train until a stop condition; returns where the run is and how it ended."""
        cfg, t = self.cfg, self.cfg.train
        self.run_dir.prepare(self.resume, self.dist)
        set_seed(t.seed)

        # The training split is streamed into a token store (built once, then mapped: see
        # data/store.py), never loaded; the validation split is small and loaded.
        source = build.train_source(cfg, self.objective, echo=self.dist.main)
        self.valid_text = build.load_valid(cfg, self.objective)
        resumed = self.run_dir.resumable() if self.resume else None
        self.tokenizers = build.run_tokenizers(cfg, self.objective, source, self.dist, self.out, resumed)
        self.store = build.shared_train_store(cfg, self.objective, source, self.tokenizers, self.dist)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)  # after the data: bad data leaves no empty run behind
        self.objective.prepare(self.store, resumed)
        self.train_data, stats = self.objective.select(self.store)
        log.info("training data %s: %s", self.store.name, stats.summary())
        if not len(self.train_data):
            raise Seq2SeqError(f"no training pairs left after filtering {self.store.name} ({stats.summary()})")
        self.source_limits = build.source_limits(cfg, self.train_data)
        self.train_targets = build.context_targets(cfg, "train", self.store.size, self.store.name)
        self.valid_batches: list[Batch] = []
        if self.valid_text is not None:
            self.valid_batches = build.valid_batches(cfg, self.objective, self.valid_text, self.tokenizers)

        self.model = build.build_model(cfg, self.objective, self.tokenizers, self.device, load_parts=not self.resume)
        self.optimizer = build.build_optimizer(cfg, self.model, self.device)
        self.schedule = build.build_schedule(cfg, self.optimizer)
        if self.resume:
            resume_from(resumed, cfg, self.model, self.optimizer, self.schedule, self.state, self.device)
        elif self.dist.main:
            self.tokenizers.save(self.out)
            self.run_dir.config.write_text(cfg.to_json(), encoding="utf-8")

        n_params = self.model.num_parameters()
        log.info(
            "task %s: %s, %.2fM parameters (%.2fM trainable), device %s, %s",
            cfg.task,
            self.objective.describe(self.model),
            n_params / 1e6,
            self.model.num_parameters(True) / 1e6,
            self.device,
            "bf16 autocast" if isinstance(self.autocast, torch.autocast) else "fp32",
        )
        self.logbook = JsonlLog(
            self.run_dir.log, enabled=self.dist.main, tensorboard=self.out / "tensorboard" if t.tensorboard else None
        )
        if self.resume:
            self.logbook.truncate_after(self.state.step)
        self.logbook.write(
            event="start",
            resume=self.resume,
            step=self.state.step,
            parameters=n_params,
            train_pairs=stats.kept,
            filtered=stats.summary(),
            device=str(self.device),
            world_size=self.dist.world,
        )

        self.sampler = build.train_sampler(cfg, self.train_data, self.dist.world, echo=self.dist.main)
        try:
            stop = self._loop()
            # Every rank is done (rank 0 writes the last checkpoint) before any leaves the process
            # group. Without this, 1 of ~10 runs of the 2-process test had rank 1 abort (SIGABRT)
            # at the end of training, presumably in gloo's teardown while rank 0 was still saving.
            self.dist.barrier()
        finally:
            self.logbook.close()
            if self.dist.active:
                torch.distributed.destroy_process_group()
        s = self.state
        self.logbook.write(event="end", step=s.step, reason=stop, best=s.best_score, seconds=s.seconds)
        log.info(
            "done (%s) after %d updates, %.0f s; best valid %s = %s; checkpoints in %s",
            stop,
            s.step,
            s.seconds,
            self.validator.metric,
            s.best_score,
            self.out,
        )
        return TrainResult(self.out, s.best_score, self.validator.metric, s.step, s.seconds)

    # -------------------------------------------------------------- checkpoints
    def _save(self, improved: bool, validated: bool) -> None:
        """``best/`` when improved, ``last/``, and at validations a ``step-N/`` copy (rundir.py)."""
        s = self.state
        extra: dict[str, Any] = {"step": s.step, "epoch": s.epoch, **self.objective.checkpoint_extra()}
        if self.source_limits:
            extra["source_limits"] = self.source_limits
        saved = trainer_state(self.optimizer, self.schedule, s)
        self.run_dir.save(self.model, self.cfg, self.tokenizers, saved, extra, improved, s.step if validated else None)

    # --------------------------------------------------------------------- loop
    def _loop(self) -> str:
        """Epochs of updates until a stop condition; returns its name."""
        t, s = self.cfg.train, self.state
        self.stepper = Stepper(
            self.cfg,
            self.objective,
            self.model,
            self.optimizer,
            self.schedule,
            self.train_data,
            self.train_targets,
            s,
            self.dist,
            self.device,
            self.logbook,
            self.run_dir.last,
        )
        self.session_start, self.seconds_before = time.time(), s.seconds
        self.last_validated = self.last_saved = -1  # updates of the last validation and of the last save
        with StopRequests() as stop_requested:
            while s.epoch < t.max_epochs:
                batches = self.sampler.ordered(s.epoch)  # arrays: no list per batch
                bar = progress_bar(s.epoch, len(batches), s.batches_done, enabled=t.progress and self.dist.main)
                try:
                    for k in range(s.batches_done, len(batches)):
                        self.stepper.micro_batch(batches[k])
                        bar.update(1)
                        if not self.stepper.ready:
                            continue
                        norm = self.stepper.update()
                        if s.step % t.log_every == 0:
                            log_train(
                                self.logbook,
                                self.stepper.window,
                                self.dist,
                                self.objective,
                                s,
                                self.schedule.lr,
                                norm,
                                self._elapsed(),
                                bar,
                            )
                        stop = self._after_update(stop_requested, bar)
                        if stop:
                            return stop
                finally:
                    bar.close()
                s.epoch += 1
                s.batches_done = 0
                if not t.valid_every and self._validate_and_save("epoch"):
                    return "early stopping"
        if t.valid_every:
            self._validate_and_save("end")
        return "max_epochs"

    def _after_update(self, stop_requested: Callable[[], bool], bar: tqdm) -> Optional[str]:
        """Validation, saves and the stop conditions after an update; the stop's name, if any."""
        t, s = self.cfg.train, self.state
        if t.valid_every and s.step % t.valid_every == 0 and self._validate_and_save("interval"):
            return "early stopping"
        if t.max_steps and s.step >= t.max_steps:
            bar.close()
            self._validate_and_save("max_steps")
            return "max_steps"
        if t.max_minutes and self.dist.broadcast(self._elapsed() >= 60 * t.max_minutes):
            bar.close()
            self._validate_and_save("max_minutes")
            return "max_minutes"
        if t.save_every and s.step % t.save_every == 0:
            self._save_last()
        if self.dist.sum_scalar(float(stop_requested())) > 0:  # any rank's Ctrl-C stops all
            bar.close()
            self._save_last()
            self.logbook.write(event="interrupted", step=s.step, seconds=s.seconds)
            log.warning("interrupted at update %d: saved %s; continue with --resume", s.step, self.run_dir.last)
            raise KeyboardInterrupt
        return None

    def _elapsed(self) -> float:
        return self.seconds_before + time.time() - self.session_start

    def _validate_and_save(self, reason: str) -> bool:
        """Validate (rank 0; every rank takes its decisions from rank 0's result) and save.
        Returns True when training should stop (early stopping)."""
        s, dist = self.state, self.dist
        if self.last_validated == s.step:
            return False  # already validated and saved at this update
        self.last_validated = s.step
        s.seconds = self._elapsed()
        result = {}
        if self.valid_text is not None and dist.main:
            result = self.validator(self.model, self.tokenizers, self.valid_text, self.valid_batches)
        result = dist.broadcast(result)
        improved = True
        if result:
            improved = self.validator.record(result, s)
            self.schedule.step_validation(self.validator.score(result), self.validator.higher_is_better, s.step)
            log_valid(self.logbook, result, s, reason, self.schedule.lr, improved, echo=dist.main)
        if dist.main:
            self._save(improved, validated=True)
        self.last_saved = s.step
        return self.validator.patience_exhausted(s)

    def _save_last(self) -> None:
        """``last/`` only (save_every, interruption): no validation, no step-N copy."""
        if self.last_saved != self.state.step:
            self.state.seconds = self._elapsed()
            if self.dist.main:
                self._save(improved=False, validated=False)
            self.last_saved = self.state.step
