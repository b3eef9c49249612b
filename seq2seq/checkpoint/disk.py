"""How a checkpoint lies on disk: its file names, the weights and trainer state as safetensors
plus JSON (nothing pickled), and the primitives of a durable write (fsync, file mode, sha256)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAINER_STATE = "trainer_state.json"
TRAINER_TENSORS = "trainer_state.safetensors"
LEGACY_TRAINER_STATE = "trainer_state.pt"  # written by seq2seq 0.1 (pickle; loaded weights_only)
MANIFEST = "manifest.json"


def fsync_file(path: Path) -> None:
    """Flush the file ``path`` to stable storage (its data, before a rename publishes it)."""
    with open(path, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())


def fsync_directory(path: str | Path) -> None:
    """fsync the directory ``path``, so that the renames and new entries in it survive a power cut.

    Best effort, never raises: where the OS or file system cannot open or fsync a directory
    (Windows, some network file systems) nothing is done, as the rename is all there is then.
    Call it on the parent after ``os.replace(tmp, final)``, and on a directory whose new files
    are to be durable before it is renamed.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_mode() -> int:
    """The permissions a new file gets from the umask (0644 with the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file ``path``, read 1 MiB at a time (what the manifest records)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(model: torch.nn.Module, path: str) -> None:
    """The model's state dict as safetensors, each shared (tied) tensor once, in identical bytes
    for identical weights (safetensors' ``save_model`` writes its notes on shared names in a
    random order, so the same weights could hash differently)."""
    state = model.state_dict()
    kept: dict[tuple[int, int, tuple[int, ...]], str] = {}
    shared: dict[str, str] = {}
    for name in sorted(state):
        tensor = state[name]
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in kept:
            shared[name] = kept[key]
        else:
            kept[key] = name
    tensors = {name: t.contiguous() for name, t in state.items() if name not in shared}
    save_file(tensors, path, metadata={"shared": json.dumps(shared, sort_keys=True)} if shared else None)


def flatten_state(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON for ``value`` (nested dicts, lists, tuples, numbers, strings, tensors); tensors go to
    ``tensors`` under a fresh name and are referenced as ``{"tensor": name}``."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()
        return {"tensor": name}
    if isinstance(value, dict):  # keys may be ints (optimizer state): keep their type
        return {"dict": [[k, flatten_state(v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [flatten_state(v, tensors) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"trainer state holds a {type(value).__name__}, which a checkpoint cannot store")


def unflatten_state(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten_state`; raises ValueError on anything it did not write."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {str(node)[:80]}")
    ((kind, body),) = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {k: unflatten_state(v, tensors) for k, v in body}
    if kind in ("list", "tuple"):
        items = [unflatten_state(v, tensors) for v in body]
        return items if kind == "list" else tuple(items)
    if kind == "value" and (body is None or isinstance(body, (bool, int, float, str))):
        return body
    raise ValueError(f"unexpected node {str(node)[:80]}")
