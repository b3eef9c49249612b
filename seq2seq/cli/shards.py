"""``seq2seq translate --shard K/N``: which shard (K/N, or torchrun's RANK and WORLD_SIZE), which
lines of the input it translates, where it writes, and on which GPU."""

from __future__ import annotations

import argparse
import os
import re
from typing import Optional

from seq2seq.errors import Seq2SeqError


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``--shard``: "K/N" -> (K, N); "auto" -> (RANK, WORLD_SIZE) as torchrun sets them ((0, 1)
    outside torchrun); None -> None."""
    if text is None:
        return None
    if text == "auto":
        try:
            rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            raise Seq2SeqError("--shard auto: RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
        if not 0 <= rank < world:
            raise Seq2SeqError(f"--shard auto: RANK {rank} is not below WORLD_SIZE {world}")
        return rank, world
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not int(match[1]) < int(match[2]):
        raise Seq2SeqError(f"--shard {text}: give K/N with 0 <= K < N (e.g. 0/4 ... 3/4), or auto under torchrun")
    return int(match[1]), int(match[2])


def shard_output(path: Optional[str], shard: Optional[tuple[int, int]]) -> Optional[str]:
    """Where shard K of N writes ``--output FILE``: ``FILE.K-of-N``, K zero-padded so that
    ``cat FILE.*-of-N`` lists the shards in order (FILE itself for a single shard)."""
    if not path or path == "-" or shard is None or shard[1] == 1:
        return path
    k, n = shard
    return f"{path}.{k:0{len(str(n - 1))}d}-of-{n}"


def shard_range(k: int, n: int, lines: int) -> tuple[int, int]:
    """Shard ``k`` of ``n`` of ``lines`` lines: lines ``[start, stop)``, contiguous blocks whose
    sizes differ by at most one line, in order: the shards' outputs joined in order (``cat``)
    are the output of the whole input."""
    return k * lines // n, (k + 1) * lines // n


def shard_device(args: argparse.Namespace) -> None:
    """Under torchrun with ``--shard auto`` and ``--device auto``: each process on its own GPU
    (LOCAL_RANK), where there are GPUs."""
    if args.shard != "auto" or args.device != "auto" or "LOCAL_RANK" not in os.environ:
        return
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        args.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
