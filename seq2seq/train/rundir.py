"""The run directory (``train.output_dir``), in one place::

    train_log.jsonl   one JSON record per log interval, validation and skipped update
    config.yaml       the run's config
    last/             the latest checkpoint (with trainer state, for --resume)
    best/             the best checkpoint by ``train.early_stop_metric``
    step-N/           the last ``train.keep_last`` validation checkpoints

Checkpoints are written with an atomic swap (``checkpoint.py``); a crash can leave ``X.tmp``
(a save or copy cut short: never used) or ``X.old`` (a swap cut short: then the only complete
copy), which :meth:`RunDir.recover` cleans up before a resumed run touches anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from seq2seq.checkpoint import (
    STEP_PREFIX,
    copy_checkpoint,
    recover_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    step_checkpoints,
)
from seq2seq.config import Config
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import Seq2SeqError
from seq2seq.models import Composite
from seq2seq.train.distributed import Distributed


class RunDir:
    """A training run's directory: where each checkpoint goes, recovery and pruning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.last = self.path / "last"
        self.best = self.path / "best"
        self.log = self.path / "train_log.jsonl"
        self.config = self.path / "config.yaml"

    def step(self, n: int) -> Path:
        return self.path / f"{STEP_PREFIX}{n}"

    def steps(self) -> list[Path]:
        """The ``step-N/`` checkpoints, oldest first."""
        return step_checkpoints(self.path)

    def prepare(self, resume: bool, dist: Distributed) -> None:
        """Before a run: a new one must not overwrite a run (:meth:`check_new`); a resumed one
        needs a checkpoint, and the first rank cleans up after a crash (:meth:`recover`) while
        the others wait."""
        if not resume:
            self.check_new()
            return
        self.resumable()  # clear error when there is nothing to resume
        if dist.main:
            self.recover()
        dist.barrier()

    def check_new(self) -> None:
        """Refuse to start a new run over an existing one."""
        if self.last.exists() or self.last.with_name("last.old").exists():
            raise Seq2SeqError(
                f"{self.path} already holds a run (found {self.last}); resume it with --resume, "
                "or choose another train.output_dir"
            )

    def resumable(self) -> Path:
        """The checkpoint to resume from (clear error when there is none)."""
        return resolve_checkpoint(self.last)

    def recover(self) -> None:
        """Clean up after a crash: drop ``*.tmp`` (cut-short saves), restore ``*.old`` (cut-short swaps)."""
        for stale in self.path.glob("*.tmp"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        for moved in self.path.glob("*.old"):
            recover_checkpoint(moved.with_name(moved.name[: -len(".old")]))

    def save(
        self,
        model: Composite,
        cfg: Config,
        tokenizers: TokenizerPair,
        trainer_state: dict[str, Any],
        extra: dict[str, Any],
        improved: bool,
        step: Optional[int] = None,
    ) -> None:
        """Write ``best/`` (when ``improved``), then ``last/``, then (with ``step``, at a
        validation) a ``step-N/`` copy, keeping the last ``train.keep_last`` of those.

        ``best/`` goes first: a crash between the two leaves ``last/`` at the previous save, and
        the resumed run repeats this validation and writes ``best/`` again.
        """
        if improved:
            save_checkpoint(self.best, model, cfg, tokenizers, None, extra)
        last = save_checkpoint(self.last, model, cfg, tokenizers, trainer_state, extra)
        keep = cfg.train.keep_last
        if step is not None and keep > 0:
            copy_checkpoint(last, self.step(step))
            for old in self.steps()[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
