"""The training loop. ``Trainer(cfg).fit()`` wires the parts and runs it.

One update, through five files: ``build.py`` makes the data, tokenizers, model and optimizer;
the :class:`~seq2seq.train.objectives.Objective` of the task gives the loss of each batch; this
loop accumulates, steps and logs (``logbook.py``); ``validation.py`` scores; ``rundir.py``
writes the checkpoints (``best/``, ``last/``, ``step-N/``).

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
import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from tqdm.auto import tqdm

from seq2seq.checkpoint import load_trainer_state, load_weights
from seq2seq.config import Config
from seq2seq.data.batching import Batch, TokenBudgetBatchSampler, collate
from seq2seq.data.loading import TextSource
from seq2seq.data.store import TokenStore
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import Seq2SeqError
from seq2seq.models import Composite
from seq2seq.models.cpu_kernels import use_cpu_kernels
from seq2seq.runtime import (
    avoid_per_shape_attention_plans,
    limit_onednn_cache,
    resolve_device,
    resolve_precision,
)
from seq2seq.train import build
from seq2seq.train.distributed import init_distributed
from seq2seq.train.logbook import JsonlLog, LossWindow, StopRequests
from seq2seq.train.objectives import Objective, StepLoss, choose_objective, train_mode
from seq2seq.train.rundir import RunDir
from seq2seq.train.schedules import LRSchedule
from seq2seq.train.state import TrainState, capture_rng, check_resumed_config, restore_rng, set_seed
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
        self.device = resolve_device(cfg.train.device)
        self.dist = init_distributed(self.device.type)  # launched by torchrun: one rank of several
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device(self.dist.device)
            torch.cuda.set_device(self.device)
        if self.device.type == "cuda":
            avoid_per_shape_attention_plans()
        precision = resolve_precision(cfg.train.precision, self.device)
        self.autocast: AbstractContextManager = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
        )
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        self.objective = objective or choose_objective(cfg, self.autocast)
        self.validator = Validator(cfg, self.objective, self.device, self.autocast)
        self.state = TrainState()
        self.source_limits: dict[str, int] = {}  # what the training sources were like (see data/domain.py)

    # ------------------------------------------------------------------ set-up
    def fit(self) -> TrainResult:
        """Train until a stop condition; returns where the run is and how it ended."""
        cfg, t = self.cfg, self.cfg.train
        self._prepare_output_dir()
        set_seed(t.seed)

        # The training split is streamed into a token store (built once, then mapped: see
        # data/store.py), never loaded; the validation split is small and loaded.
        source = build.train_source(cfg, self.objective)
        self.valid_text = build.load_valid(cfg, self.objective)
        self.tokenizers = self._tokenizers(source)
        self.store = self._store(source)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)  # after the data: bad data leaves no empty run behind
        self.objective.prepare(self.store, self.run_dir.resumable() if self.resume else None)
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
        if self.device.type == "cpu" and t.cpu_kernels:
            use_cpu_kernels(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build.build_optimizer(cfg, self.model, self.device)
        self.schedule = LRSchedule(
            self.optimizer, t.scheduler, t.lr, t.warmup_steps, t.plateau_factor, t.plateau_patience, t.min_lr
        )
        if self.resume:
            self._restore()
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

        # Global batches of world_size x train.max_tokens, each split across the ranks.
        world = self.dist.world
        self.sampler = TokenBudgetBatchSampler(
            self.train_data.src_lengths,
            self.train_data.tgt_lengths + 1,
            max_tokens=t.max_tokens * world,
            max_sentences=t.max_sentences * world,
            shuffle=True,
            seed=t.seed,
        )
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

    def _prepare_output_dir(self) -> None:
        if not self.resume:
            self.run_dir.check_new()
            return
        self.run_dir.resumable()  # clear error when there is nothing to resume
        if self.dist.main:
            self.run_dir.recover()
        self.dist.barrier()

    def _tokenizers(self, source: TextSource) -> TokenizerPair:
        """A resumed run's SentencePiece models, or new ones (rank 0 builds, the others read them)."""
        if self.resume:
            return TokenizerPair.load(self.run_dir.resumable())
        tokenizers = build.build_tokenizers(self.cfg, self.objective, source) if self.dist.main else None
        if self.dist.active:
            if self.dist.main:
                tokenizers.save(self.out)
            self.dist.barrier()
            tokenizers = TokenizerPair.load(self.out)
        return tokenizers

    def _store(self, source: TextSource) -> TokenStore:
        """The training split's token store: built if missing by the first rank of each machine
        while the others wait, then opened by every rank."""
        builder = self.dist.local_rank == 0
        store = build.train_store(self.cfg, self.objective, source, self.tokenizers) if builder else None
        self.dist.barrier()
        return store or build.train_store(self.cfg, self.objective, source, self.tokenizers, build=False)

    # -------------------------------------------------------------- checkpoints
    def _save(self, improved: bool, validated: bool) -> None:
        """``best/`` when improved, ``last/``, and at validations a ``step-N/`` copy (rundir.py)."""
        s = self.state
        trainer_state = {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            **capture_rng(),
            **s.state_dict(),
        }
        extra: dict[str, Any] = {"step": s.step, "epoch": s.epoch, **self.objective.checkpoint_extra()}
        if self.source_limits:
            extra["source_limits"] = self.source_limits
        self.run_dir.save(
            self.model, self.cfg, self.tokenizers, trainer_state, extra, improved, step=s.step if validated else None
        )

    def _restore(self) -> None:
        last = self.run_dir.resumable()
        saved_state = load_trainer_state(last)  # verifies the checkpoint's files first
        check_resumed_config(last, self.cfg)
        load_weights(self.model, last, self.device)
        self.optimizer.load_state_dict(saved_state["optimizer"])
        self.schedule.load_state_dict(saved_state["schedule"])
        restore_rng(saved_state)
        self.state.load_state_dict(saved_state)
        log.info(
            "resuming from %s at update %d (epoch %d, batch %d)",
            last,
            self.state.step,
            self.state.epoch,
            self.state.batches_done,
        )

    # --------------------------------------------------------------------- loop
    def _loop(self) -> str:
        """Epochs of updates until a stop condition; returns its name."""
        t, s = self.cfg.train, self.state
        self.engine = self._ddp_engine()
        train_mode(self.model)
        self.window = LossWindow()
        self.micro, self.accumulated_tokens, self.bad_loss, self.bad_in_a_row = 0, 0, False, 0
        self.session_start, self.seconds_before = time.time(), s.seconds
        self.last_validated = self.last_saved = -1  # updates of the last validation and of the last save
        with StopRequests() as stop_requested:
            while s.epoch < t.max_epochs:
                batches = self.sampler.ordered(s.epoch)  # arrays: no list per batch
                bar = tqdm(
                    total=len(batches),
                    initial=s.batches_done,
                    desc=f"epoch {s.epoch + 1}",
                    unit="batch",
                    disable=not (t.progress and self.dist.main),
                    dynamic_ncols=True,
                    mininterval=1.0,
                    leave=False,
                )
                try:
                    for k in range(s.batches_done, len(batches)):
                        self._forward_backward(batches[k])
                        bar.update(1)
                        if self.micro < t.accumulate:
                            continue
                        norm = self._update()
                        if s.step % t.log_every == 0:
                            self._log_train(norm, bar)
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

    def _forward_backward(self, positions: list[int]) -> None:
        """One micro-batch: loss, backward (gradients are sums over tokens), window sums."""
        t, s, dist = self.cfg.train, self.state, self.dist
        chosen = self.objective.noise(
            self.train_data.examples(positions), s.epoch, s.batches_done
        )  # read from the store
        mine = dist.shard(chosen)  # this rank's sentences of the global batch (all of it alone)
        out: StepLoss
        if dist.active:
            # DDP: every rank takes part in every backward (its gradient all-reduce). A rank left
            # without a sentence runs one with weight 0; the all-reduce of the accumulated
            # gradients happens on the last micro-batch only.
            batch = collate(mine or chosen[:1], self.train_targets).to(self.device)
            with nullcontext() if self.micro + 1 == t.accumulate else self.engine.no_sync():
                out = self.engine(batch, t.label_smoothing, s.step)
                loss_value = float(out.loss.detach()) if mine else 0.0
                (out.loss * (1.0 if mine else 0.0)).backward()  # NaN too: all ranks must reduce
        else:
            batch = collate(mine, self.train_targets).to(self.device)
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

    def _update(self) -> torch.Tensor:
        """One optimizer step on the accumulated gradients (skipped when non-finite); returns the
        gradient norm."""
        t, dist = self.cfg.train, self.dist
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
            self._skip_update("loss" if self.bad_loss else "gradient")
        self.optimizer.zero_grad(set_to_none=True)
        self.micro, self.accumulated_tokens, self.bad_loss = 0, 0, False
        self.state.step += 1
        self.schedule.step_update(self.state.step)
        return norm

    def _log_train(self, norm: torch.Tensor, bar: tqdm) -> None:
        s, w = self.state, self.window
        w.reduce(self.dist)
        now = time.time()
        f = w.figures(now)
        extra = self.objective.log_extra(w.kl, w.sentences, s.step)
        self.logbook.write(
            event="train",
            step=s.step,
            epoch=s.epoch,
            loss=f["loss"],
            nll=f["nll"],
            ppl=f["ppl"],
            **extra,
            lr=self.schedule.lr,
            tokens_per_s=f["tokens_per_s"],
            grad_norm=float(norm),
            seconds=self._elapsed(),
        )
        bar.set_postfix(
            loss=f"{f['loss']:.3f}",
            lr=f"{self.schedule.lr:.2e}",
            tok_s=f"{f['tokens_per_s']:.0f}",
            **{k: f"{v:.3g}" for k, v in extra.items()},
        )
        w.reset(now)

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
            self.logbook.write(
                event="valid",
                step=s.step,
                epoch=s.epoch,
                reason=reason,
                **result,
                best=s.best_score,
                lr=self.schedule.lr,
                seconds=s.seconds,
            )
            if dist.main:
                tqdm.write(
                    f"[valid] step {s.step} epoch {s.epoch} "
                    + " ".join(f"{k}={v:.4g}" for k, v in result.items())
                    + (" (best)" if improved else f" (best {s.best_score:.4g})")
                )
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

    def _skip_update(self, what: str) -> None:
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
        limit = self.cfg.train.max_bad_updates
        if in_a_row >= limit:
            raise Seq2SeqError(
                f"training diverged: {in_a_row} updates in a row had a non-finite {what} (train.max_bad_updates="
                f"{limit}, last at update {step}). The last good checkpoint is {self.run_dir.last}. Lower "
                "train.lr or raise train.warmup_steps, check the data, or use train.precision=fp32; then "
                "--resume or start again"
            )


class LossModule(torch.nn.Module):
    """The objective's loss on a batch as the ``forward`` of one module, for
    ``DistributedDataParallel`` to wrap (DDP starts by broadcasting rank 0's weights)."""

    def __init__(self, objective: Objective, model: Composite) -> None:
        super().__init__()
        self.objective = objective
        self.model = model

    def forward(self, batch: Batch, label_smoothing: float, step: int) -> StepLoss:
        return self.objective.loss(self.model, batch, label_smoothing, step)
