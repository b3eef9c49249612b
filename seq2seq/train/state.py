"""Where training stands: :class:`TrainState`, the random number streams a resume restores,
what ``last/`` keeps of the run beside the weights (:func:`trainer_state`, :func:`resume_from`), and
which config changes a resume allows."""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from seq2seq.checkpoint import load_trainer_state, load_weights
from seq2seq.config import Config, config_from_dict
from seq2seq.errors import ConfigError
from seq2seq.models import Composite
from seq2seq.train.schedules import LRSchedule

log = logging.getLogger("seq2seq.train")


@dataclass
class TrainState:
    """The loop's progress; saved in ``last/`` with the optimizer and restored by ``--resume``."""

    step: int = 0  # updates done
    epoch: int = 0
    batches_done: int = 0  # batches of this epoch already trained on (the position inside the epoch)
    best_score: Optional[float] = None  # best validation score so far (train.early_stop_metric)
    best_loss: float = math.inf  # validation loss at the best score (breaks ties)
    bad_validations: int = 0  # validations in a row without improvement (train.patience)
    skipped_updates: int = 0  # updates skipped for a non-finite loss or gradient
    seconds: float = 0.0  # training time, over all sessions of the run

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Fields missing from ``state`` (a checkpoint of an older version) keep their values."""
        for f in fields(self):
            if f.name in state:
                setattr(self, f.name, state[f.name])


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """The Python, NumPy, PyTorch (and CUDA) random states, as tensors and lists."""
    state = {
        "torch_rng": torch.get_rng_state(),
        "python_rng": list(random.getstate()[1]),
        "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    random.setstate((3, tuple(int(x) for x in state["python_rng"]), None))
    np_state = np.random.get_state()
    np.random.set_state((np_state[0], state["numpy_rng"].numpy().astype(np.uint32), *np_state[2:]))


def trainer_state(optimizer: torch.optim.Optimizer, schedule: LRSchedule, state: TrainState) -> dict[str, Any]:
    """What ``last/`` keeps to resume from: optimizer, schedule, RNG streams and :class:`TrainState`."""
    return {
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        **capture_rng(),
        **state.state_dict(),
    }


def resume_from(
    checkpoint: Path,
    cfg: Config,
    model: Composite,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    state: TrainState,
    device: torch.device,
) -> None:
    """Undo :func:`trainer_state` (and load the weights) from ``checkpoint``, for a run of ``cfg``."""
    saved = load_trainer_state(checkpoint)  # verifies the checkpoint's files first
    check_resumed_config(checkpoint, cfg)
    load_weights(model, checkpoint, device)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    restore_rng(saved)
    state.load_state_dict(saved)
    log.info(
        "resuming from %s at update %d (epoch %d, batch %d)", checkpoint, state.step, state.epoch, state.batches_done
    )


# Settings that may change on --resume without changing where the run goes.
FREE_ON_RESUME = {
    "train." + k
    for k in (
        "output_dir",
        "device",
        "threads",
        "max_epochs",
        "max_steps",
        "max_minutes",
        "valid_every",
        "valid_bleu",
        "valid_max_sentences",
        "patience",
        "keep_last",
        "save_every",
        "max_bad_updates",
        "log_every",
        "progress",
    )
}
FREE_ON_RESUME |= {"search", "data.cache_dir"}


def trajectory_changes(saved: Config, new: Config) -> list[str]:
    """The config keys, other than :data:`FREE_ON_RESUME`, that differ between two runs."""
    a, b = saved.to_dict(), new.to_dict()
    changed = []
    for section, values in a.items():
        if section in FREE_ON_RESUME:
            continue
        if not isinstance(values, dict):
            changed += [section] if values != b.get(section) else []
            continue
        changed += [
            f"{section}.{k}"
            for k, v in values.items()
            if f"{section}.{k}" not in FREE_ON_RESUME and v != b.get(section, {}).get(k)
        ]
    return changed


def check_resumed_config(checkpoint: Path, cfg: Config) -> None:
    """``--resume`` with ``cfg``: refuse another model than the checkpoint's; warn about changed
    settings that change where the run goes (all but :data:`FREE_ON_RESUME`)."""
    # Through config_from_dict, so fields added since the run started take their defaults.
    saved = config_from_dict(json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))["config"])
    if saved.model != cfg.model:
        raise ConfigError(f"--resume: the model section differs from the one in {checkpoint}/config.json")
    changed = trajectory_changes(saved, cfg)
    if changed:
        log.warning(
            "--resume with changed settings (%s): the run goes on, but will not end where the original run would have",
            ", ".join(changed),
        )
