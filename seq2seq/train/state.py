"""Where training stands: :class:`TrainState`, and the random number streams a resume restores."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Optional

import numpy as np
import torch


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
