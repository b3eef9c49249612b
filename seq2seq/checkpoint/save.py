"""Writing checkpoints atomically: every file into ``NAME.tmp``, fsynced, a manifest last, then a
swap of directories that leaves either the old or the new checkpoint complete at every instant."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import save_file

import seq2seq.checkpoint as checkpoint_package  # for save_weights (see _write_files)
from seq2seq import CHECKPOINT_FORMAT, __version__
from seq2seq.checkpoint.disk import (
    CONFIG,
    MANIFEST,
    TRAINER_STATE,
    TRAINER_TENSORS,
    WEIGHTS,
    file_mode,
    flatten_state,
    fsync_directory,
    fsync_file,
    sha256_file,
)
from seq2seq.config import Config
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import CheckpointError
from seq2seq.models import Composite


def save_checkpoint(
    directory: str | Path,
    model: Composite,
    cfg: Config,
    tokenizers: TokenizerPair,
    trainer_state: Optional[dict[str, Any]] = None,
    extra: Optional[dict[str, Any]] = None,
) -> Path:
    """Write a complete checkpoint to ``directory`` atomically (see the module docstring).

    Raises:
        CheckpointError: the files could not be written (disk full, permissions, ...). The
            temporary directory is removed and the previous checkpoint, if any, is left intact.
    """
    final = Path(directory)
    tmp = final.with_name(final.name + ".tmp")
    if final.exists() and not final.is_dir():
        raise CheckpointError(f"{final} exists and is not a directory; give a new directory name")
    if final.is_dir() and any(final.iterdir()) and not (final / MANIFEST).is_file():
        raise CheckpointError(
            f"{final} is a directory that is not a checkpoint, and it would be replaced; give a new directory name"
        )
    try:
        recover_checkpoint(final)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        _write_files(tmp, model, cfg, tokenizers, trainer_state, extra)
    except Exception as e:  # OSError, and the errors torch/safetensors/sentencepiece wrap it in
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the previous checkpoint in {final} is intact" if final.is_dir() else "no checkpoint was written"
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0][:200] or type(e).__name__
        raise CheckpointError(
            f"cannot write checkpoint {final}: {reason}; {kept}. Free disk space or fix the "
            "permissions of the output directory, then continue with --resume"
        ) from None
    _swap_into_place(tmp, final)
    return final


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the complete directory ``tmp`` to ``final``. An existing ``final`` is first renamed
    to ``final.old`` and removed last: at every instant one of them is complete."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_directory(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _write_files(
    tmp: Path,
    model: Composite,
    cfg: Config,
    tokenizers: TokenizerPair,
    trainer_state: Optional[dict[str, Any]],
    extra: Optional[dict[str, Any]],
) -> None:
    """Every file of a checkpoint into the (new, empty) directory ``tmp``, fsynced, manifest last."""
    meta = {
        "format": CHECKPOINT_FORMAT,
        "seq2seq_version": __version__,
        "src_vocab_size": tokenizers.src.vocab_size,
        "tgt_vocab_size": tokenizers.tgt.vocab_size,
        "num_parameters": model.num_parameters(),
        **(extra or {}),
        "config": cfg.to_dict(),
    }
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    # Looked up on the package at each save: seq2seq.checkpoint.save_weights stays the one name
    # to wrap (tests/test_reliability.py replaces it to fail or pause a save half-way).
    checkpoint_package.save_weights(model, str(tmp / WEIGHTS))
    tokenizers.save(tmp)
    if trainer_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        skeleton = flatten_state(trainer_state, tensors)
        save_file(tensors, str(tmp / TRAINER_TENSORS))
        (tmp / TRAINER_STATE).write_text(json.dumps(skeleton) + "\n", encoding="utf-8")

    files = sorted(p for p in tmp.iterdir() if p.is_file())
    mode = file_mode()
    for p in files:
        os.chmod(p, mode)  # safetensors and tempfile create 0600 files: share like any other file
        fsync_file(p)
    manifest = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    fsync_file(tmp / MANIFEST)
    fsync_directory(tmp)


def recover_checkpoint(final: Path) -> None:
    """After a crash between the two renames of a save, only ``final.old`` is complete: move it
    back before anything else touches ``.old``."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.is_dir() and (old / MANIFEST).is_file():
        os.replace(old, final)
        fsync_directory(final.parent)


def copy_checkpoint(source: str | Path, directory: str | Path) -> Path:
    """An atomic copy of a complete checkpoint (hard links where the file system allows them:
    checkpoint files are never modified in place, only replaced). An existing ``directory`` is
    replaced with the same swap as :func:`save_checkpoint`, so a crash never loses both."""
    src, final = Path(source), Path(directory)
    tmp = final.with_name(final.name + ".tmp")

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    try:
        recover_checkpoint(final)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, copy_function=link_or_copy)
        fsync_directory(tmp)
        _swap_into_place(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"cannot copy checkpoint {src} to {final}: {e.strerror or e}") from None
    return final
