"""What a run reports: the JSON-lines log (and TensorBoard), the loss window between log
lines, what a training and a validation record hold, and Ctrl-C / SIGTERM turned into a stop at
the next update."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from seq2seq.errors import ConfigError
from seq2seq.train.distributed import Distributed
from seq2seq.train.objectives import Objective, StepLoss
from seq2seq.train.state import TrainState

log = logging.getLogger("seq2seq.train")


class JsonlLog:
    """Append-only JSON-lines log (one flushed line per record); ``enabled=False``: writes nothing
    (the ranks other than 0 of a distributed run). With a ``tensorboard`` directory, the numbers
    of the ``train`` and ``valid`` records also go to TensorBoard (``train/loss``, ``valid/bleu``...)."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: Optional[Path] = None) -> None:
        self.path = path
        self.enabled = enabled
        self.board = None
        if enabled and tensorboard is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "train.tensorboard needs the tensorboard package: pip install tensorboard (or seq2seq[tensorboard])"
                ) from None
            self.board = SummaryWriter(str(tensorboard))

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.board is not None and record.get("event") in ("train", "valid"):
            prefix = record["event"]
            for key, value in record.items():
                if key not in ("event", "step", "epoch") and isinstance(value, (int, float)):
                    name = key[len("valid_") :] if key.startswith("valid_") else key
                    self.board.add_scalar(f"{prefix}/{name}", value, record["step"])
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def truncate_after(self, step: int) -> None:
        """On resume: drop the records of updates after ``step`` (the resumed run writes them
        again) and a last line cut short by a crash; the file is replaced atomically."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class LossWindow:
    """Sums over the updates since the last training log line."""

    KEYS = ("loss", "nll", "kl", "sentences", "tokens")

    def __init__(self) -> None:
        self.reset(time.time())

    def reset(self, now: float) -> None:
        self.loss = self.nll = self.kl = 0.0
        self.sentences = self.tokens = 0
        self.started = now

    def add(self, out: StepLoss, loss_value: float, sentences: int) -> None:
        """One micro-batch with a finite loss (``loss_value``: ``out.loss`` as a float)."""
        self.loss += loss_value
        self.nll += float(out.nll.detach())
        self.kl += 0.0 if out.kl is None else float(out.kl.detach())
        self.sentences += sentences
        self.tokens += out.n

    def reduce(self, dist: Distributed) -> None:
        """The whole job's sums (every rank calls this at the same update)."""
        if dist.active:
            for key in self.KEYS:
                setattr(self, key, dist.sum_scalar(getattr(self, key)))

    def figures(self, now: float) -> dict[str, float]:
        """Per-token loss and NLL, perplexity and target tokens per second since the last reset."""
        tok = max(1, self.tokens)
        return {
            "loss": self.loss / tok,
            "nll": self.nll / tok,
            "ppl": math.exp(min(self.nll / tok, 50.0)),
            "tokens_per_s": self.tokens / max(1e-9, now - self.started),
        }


def progress_bar(epoch: int, batches: int, done: int, enabled: bool) -> tqdm:
    """The progress bar of an epoch of ``batches`` batches, ``done`` of them already trained on."""
    return tqdm(
        total=batches,
        initial=done,
        desc=f"epoch {epoch + 1}",
        unit="batch",
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=1.0,
        leave=False,
    )


def log_train(
    logbook: JsonlLog,
    window: LossWindow,
    dist: Distributed,
    objective: Objective,
    state: TrainState,
    lr: float,
    grad_norm: torch.Tensor,
    seconds: float,
    bar: tqdm,
) -> None:
    """A ``train`` record of the whole job's window (every rank calls this at the same update),
    its figures on the progress bar, and a new window."""
    window.reduce(dist)
    now = time.time()
    f = window.figures(now)
    extra = objective.log_extra(window.kl, window.sentences, state.step)
    logbook.write(
        event="train",
        step=state.step,
        epoch=state.epoch,
        loss=f["loss"],
        nll=f["nll"],
        ppl=f["ppl"],
        **extra,
        lr=lr,
        tokens_per_s=f["tokens_per_s"],
        grad_norm=float(grad_norm),
        seconds=seconds,
    )
    bar.set_postfix(
        loss=f"{f['loss']:.3f}",
        lr=f"{lr:.2e}",
        tok_s=f"{f['tokens_per_s']:.0f}",
        **{k: f"{v:.3g}" for k, v in extra.items()},
    )
    window.reset(now)


def log_valid(
    logbook: JsonlLog, result: dict[str, float], state: TrainState, reason: str, lr: float, improved: bool, echo: bool
) -> None:
    """A ``valid`` record (``state``: after the result is recorded) and, with ``echo``, one line
    on the terminal."""
    logbook.write(
        event="valid",
        step=state.step,
        epoch=state.epoch,
        reason=reason,
        **result,
        best=state.best_score,
        lr=lr,
        seconds=state.seconds,
    )
    if echo:
        tqdm.write(
            f"[valid] step {state.step} epoch {state.epoch} "
            + " ".join(f"{k}={v:.4g}" for k, v in result.items())
            + (" (best)" if improved else f" (best {state.best_score:.4g})")
        )


class StopRequests:
    """Turns SIGINT/SIGTERM into a request the loop honours at the next update boundary.

    Used as ``with StopRequests() as requested: ... if requested(): ...``. A second SIGINT
    raises KeyboardInterrupt at once. Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "%s: stopping after this update and saving last/ (Ctrl-C again to abort without saving)",
            signal.Signals(signum).name,
        )

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return lambda: self.requested

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
