"""Checkpoints: a directory that rebuilds a model and its tokenizers, written atomically.

Layout of a checkpoint directory::

    config.json          the full Config, plus format version and vocabulary sizes
    model.safetensors    weights (no pickle)
    spm.model            the SentencePiece model (or src.spm.model + tgt.spm.model)
    trainer_state.json   optimizer/scheduler/RNG state and progress for --resume: the
    trainer_state.safetensors  structure as JSON, its tensors in safetensors (no pickle)
    manifest.json        size and sha256 of every file above, checked at every load

Nothing is ever unpickled: a ``trainer_state.pt`` of older versions is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.

Every file is written under a temporary directory, flushed and fsynced; the directory is
then renamed into place. Replacing an existing checkpoint renames the old one aside first,
so at every instant either the old or the new checkpoint is complete on disk.

The package has four parts: :mod:`~seq2seq.checkpoint.disk` (file names, the weights and
trainer state formats, fsync and sha256), :mod:`~seq2seq.checkpoint.save` (the atomic write,
copy and crash recovery), :mod:`~seq2seq.checkpoint.load` (verifying against the manifest and
rebuilding a model, a part of one, or the trainer state) and :mod:`~seq2seq.checkpoint.combine`
(joining an encoder and a decoder, averaging a run's last checkpoints).
"""

from seq2seq.checkpoint.combine import (
    STEP_PREFIX,
    average_checkpoints,
    join_checkpoints,
    last_checkpoints,
    step_checkpoints,
    step_number,
)
from seq2seq.checkpoint.disk import (
    CONFIG,
    LEGACY_TRAINER_STATE,
    MANIFEST,
    TRAINER_STATE,
    TRAINER_TENSORS,
    WEIGHTS,
    fsync_directory,
    save_weights,
)
from seq2seq.checkpoint.load import (
    checkpoint_config,
    load_checkpoint,
    load_part,
    load_trainer_state,
    load_weights,
    resolve_checkpoint,
    verify_checkpoint,
    weights_hash,
)
from seq2seq.checkpoint.save import copy_checkpoint, recover_checkpoint, save_checkpoint

__all__ = [
    "CONFIG",
    "LEGACY_TRAINER_STATE",
    "MANIFEST",
    "STEP_PREFIX",
    "TRAINER_STATE",
    "TRAINER_TENSORS",
    "WEIGHTS",
    "average_checkpoints",
    "checkpoint_config",
    "copy_checkpoint",
    "fsync_directory",
    "join_checkpoints",
    "last_checkpoints",
    "load_checkpoint",
    "load_part",
    "load_trainer_state",
    "load_weights",
    "recover_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "save_weights",
    "step_checkpoints",
    "step_number",
    "verify_checkpoint",
    "weights_hash",
]
