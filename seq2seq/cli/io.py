"""What the commands share: a checkpoint's errors in one sentence, its saved config, and the
flags that name checkpoints, devices, inputs and outputs. Reading inputs is in
:mod:`~seq2seq.cli.inputs`, writing outputs in :mod:`~seq2seq.cli.output`."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from seq2seq import __version__
from seq2seq.config import Config
from seq2seq.errors import CheckpointError


@contextmanager
def checkpoint_errors(directory: str, action: str = "") -> Iterator[None]:
    """Turn the exceptions of a checkpoint whose files do not fit this version (hand-edited,
    or written by another one) into one CheckpointError naming the directory."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(
            f"cannot {action or 'load checkpoint ' + directory}: {type(e).__name__}"
            f"{': ' + reason if reason else ''}; its files do not fit this seq2seq ({__version__}): "
            "use the version that wrote it, or another checkpoint"
        ) from None


def saved_config(directory: str) -> Config:
    """The config a checkpoint was trained with, read and checked as a load would (the manifest,
    the format, every key), without building the model."""
    from seq2seq.checkpoint import checkpoint_config, resolve_checkpoint, verify_checkpoint

    with checkpoint_errors(directory):
        path = resolve_checkpoint(directory)
        return checkpoint_config(path, verify_checkpoint(path))


def add_checkpoint_flag(p: argparse.ArgumentParser, help: str = "checkpoint directory (e.g. runs/NAME/best)") -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help=help)


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def add_io_flags(
    p: argparse.ArgumentParser,
    input_help: str = "input file (default: stdin)",
    output_help: str = "output file (default: stdout)",
) -> None:
    p.add_argument("--input", "-i", default=None, metavar="FILE", help=input_help)
    p.add_argument("--output", "-o", default=None, metavar="FILE", help=output_help)
