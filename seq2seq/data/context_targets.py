"""Context target vectors: one fixed vector per training example (see ``models/context.py``).

A file holds one row per line of the split it belongs to, in the same order: either a
``.npy`` array of shape (lines, dim) or a text file (optionally ``.gz``) with one line of
whitespace-separated numbers per example::

    targets = load_context_targets("train.context.txt", rows=len(train), dim=99)  # (rows, dim) float32
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from seq2seq.data.textio import read_lines
from seq2seq.errors import DataError


def load_context_targets(path: Union[str, Path], rows: int, dim: int) -> np.ndarray:
    """Read ``rows`` vectors of size ``dim``; any mismatch is a :class:`DataError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"context targets file not found: {p}")
    if p.suffix == ".npy":
        try:
            array = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{p}: not a readable .npy array of numbers ({e})") from None
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{p}: expected a 2-D numeric array (lines, {dim}), got shape {array.shape} {array.dtype}")
    else:
        values = []
        for number, line in enumerate(read_lines(p), start=1):
            try:
                values.append([float(x) for x in line.split()])
            except ValueError:
                raise DataError(f"{p}, line {number}: expected {dim} numbers separated by spaces") from None
            if len(values[-1]) != dim:
                raise DataError(
                    f"{p}, line {number}: {len(values[-1])} numbers, expected {dim} (model.context_target_dim)"
                )
        array = np.asarray(values, dtype=np.float32).reshape(len(values), dim)
    if array.shape != (rows, dim):
        raise DataError(
            f"{p}: {array.shape[0]} vectors of size {array.shape[1]}, but the split has {rows} lines "
            f"and model.context_target_dim is {dim}; give one vector per line, in the same order"
        )
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0][0]) + 1
        raise DataError(f"{p}: vector {bad} holds NaN or infinity")
    return np.ascontiguousarray(array, dtype=np.float32)
