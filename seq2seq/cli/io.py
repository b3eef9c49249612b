"""What every command shares: reading input lines, writing outputs atomically, one line per
output, checkpoint errors in one sentence, and the flags that name inputs and outputs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Optional

from seq2seq import __version__
from seq2seq.config import Config, config_from_dict
from seq2seq.errors import CheckpointError, ConfigError, Seq2SeqError


def read_input_lines(path: Optional[str]) -> list[str]:
    """Lines of ``path`` (or stdin when None / "-"), with clear errors for bad encodings."""
    from seq2seq.data.textio import decode_lines, read_lines

    if path and path != "-":
        return read_lines(path)
    if sys.stdin is None:  # started with stdin closed
        raise Seq2SeqError("no input: stdin is closed; give --input FILE")
    return decode_lines(sys.stdin.buffer.read(), "<stdin>")


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
    from seq2seq.checkpoint import CONFIG, resolve_checkpoint, verify_checkpoint

    with checkpoint_errors(directory):
        path = resolve_checkpoint(directory)
        meta = verify_checkpoint(path)
        if not isinstance(meta.get("config"), dict):
            raise CheckpointError(
                f"{path / CONFIG}: no 'config' object; not a checkpoint written by seq2seq train"
            )
        try:
            return config_from_dict(meta["config"])
        except ConfigError as e:
            raise CheckpointError(f"{path / CONFIG}: incompatible config ({e})") from None


@contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[Path]:
    """A temporary path that is renamed to ``path`` only when the block completes."""
    target = Path(path)
    if target.is_dir():
        raise Seq2SeqError(f"--output {target} is a directory; give a file name")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text stream that becomes ``path`` only when the block completes (stdout when None)."""
    if not path or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_npy(path: str, array: Any) -> None:
    """Save a .npy file atomically (temporary name, then rename)."""
    import numpy as np

    with atomic_path(path, ".npy") as tmp:
        np.save(tmp, array)


# Everything str.splitlines() breaks at: none may appear inside an output line.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def clean_line(text: str) -> str:
    """Outputs go one per line: never let a line break inside one (``\\n``, ``\\r``, or any
    other character ``str.splitlines`` splits at) break the alignment with the input."""
    return text.translate(_LINE_BREAKS)


def add_checkpoint_flag(
    p: argparse.ArgumentParser, help: str = "checkpoint directory (e.g. runs/NAME/best)"
) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help=help)


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def add_io_flags(p: argparse.ArgumentParser, input_help: str = "input file (default: stdin)",
                 output_help: str = "output file (default: stdout)") -> None:
    p.add_argument("--input", "-i", default=None, metavar="FILE", help=input_help)
    p.add_argument("--output", "-o", default=None, metavar="FILE", help=output_help)
