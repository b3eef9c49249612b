"""Data-parallel training over processes started by ``torchrun``: DistributedDataParallel.

Every rank holds the whole model, wrapped in ``DistributedDataParallel`` (through
``step.LossModule``), which all-reduces the gradients during the backward pass. Each
update's global batch (``train.max_tokens`` tokens per rank, so ``world_size`` times that in
all) is built by the same token-budget sampler on every rank and split sentence by sentence
(``positions[rank::world_size]``): no example is repeated or lost. Token counts and fault
flags are summed too, so every rank takes the same step as one process with the whole batch
would (up to the order of float additions). Rank 0 alone writes checkpoints and logs and runs
validation, and broadcasts what the others need from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from seq2seq.errors import ConfigError


@dataclass
class Distributed:
    """This process's place in the job (``world == 1``: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"  # where collective operations' tensors live (NCCL: the rank's GPU)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, positions: list[int]) -> list[int]:
        """This rank's part of a global batch (may be empty for a batch of few sentences)."""
        return positions[self.rank :: self.world] if self.active else positions

    def sum_scalar(self, value: float) -> float:
        """The sum of ``value`` over the ranks (token counts, fault flags, log sums)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item())

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object: validation results, flags)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed(device_type: str) -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``...): NCCL on CUDA, gloo on CPU. Without those
    variables (or with one process) training is not distributed.

    Rank ``r`` on CUDA uses GPU ``LOCAL_RANK mod device_count``. NCCL refuses two ranks on one
    GPU, so more processes than GPUs (to try the multi-process path on a one-GPU machine) need
    ``SEQ2SEQ_DIST_BACKEND=gloo``, which also reduces CUDA tensors, through host memory."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    backend = os.environ.get("SEQ2SEQ_DIST_BACKEND") or ("nccl" if device_type == "cuda" else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"SEQ2SEQ_DIST_BACKEND={backend!r}: use nccl or gloo")
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if backend == "nccl" and per_machine > torch.cuda.device_count():
        raise ConfigError(
            f"{per_machine} processes per machine but {torch.cuda.device_count()} GPU(s): NCCL needs one GPU "
            "per process. Start at most that many (torchrun --nproc_per_node), or set SEQ2SEQ_DIST_BACKEND=gloo "
            "to share GPUs (slower: gradients go through host memory)"
        )
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local_rank % torch.cuda.device_count()}" if device_type == "cuda" else "cpu"
    return Distributed(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device)
