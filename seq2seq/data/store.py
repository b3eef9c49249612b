"""Training data tokenized once, read from disk after: the token store, and reading it.

A :class:`TokenStore` holds one training split as token ids in flat files (fairseq's binarized
datasets work the same way)::

    <cache dir>/<name>-<key>/
        meta.json            what it holds (written last: a store without it is never used)
        src.tok  src.len     all source ids end to end (uint16, or int32 for a vocabulary over
                             65,536) and the length of each sentence (int32)
        tgt.tok  tgt.len     the same for the targets (translation); an autoencoder's target is
                             its source and has no files of its own
        labels.ids           a classifier's label of each sentence (int32, an index into
                             meta.json's "labels")

Row ``i`` is line ``i`` of the split. Nothing is filtered when the store is built: the length
limits (``data.max_src_tokens`` ...) select rows from the length arrays when training starts
(:func:`select_pairs`, :func:`select_labelled`), so changing them does not rebuild it. A
whitespace-only sentence is stored empty in translation and autoencoder stores (both drop it as
empty); a classifier's store keeps what SentencePiece makes of it, as its in-memory path did.

This module holds the format (:data:`VERSION`, :func:`token_dtype`), the store opened for
reading (:class:`TokenStore`) and the rows training takes from it (:func:`select_pairs`,
:func:`select_labelled`, :class:`StoreExamples`). What a store is built from and its key:
:mod:`seq2seq.data.store_key`; where stores are kept, building and opening them:
:mod:`seq2seq.data.store_build` (encoding the text: :mod:`seq2seq.data.store_encode`).

**Reading.** Opening a store reads the length arrays (8 bytes a pair; 4 more for labels) and
keeps the start of every :data:`STRIDE`-th sentence; a batch's ids are read with ``pread``
(:meth:`TokenStore.sources`). So a training process's resident memory does not grow with the
corpus nor with the batches it has read: ids read through a memory map would stay in its
resident size (the kernel maps file pages around each fault), although they are the file
cache's pages.

**Why flat files, not Hugging Face ``datasets``' Arrow cache** (measured by
``benchmarks/store_format.py``; the figures are in ``docs/performance.md``, "Training data on
disk"): building takes about as long (SentencePiece does most of the work), while the flat store
is several times smaller on disk, reads a batch's pairs faster, and adds less to the reading
process's memory than Arrow's memory-mapped table. And the format is a few numpy calls, with
nothing of ``datasets`` (its fingerprints, its cache files) between the data and the trainer.
"""

from __future__ import annotations

import array
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from seq2seq.errors import DataError

VERSION = 1  # of the layout and of what is stored; a change makes every store be built again
STRIDE = 32  # an opened store keeps the start of every STRIDE-th sentence in memory
KINDS = ("pairs", "monolingual", "labelled")
META = "meta.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 for a vocabulary of at most 65,536 ids, else int32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.int32)


# ---------------------------------------------------------------------------------- the store
class _Side:
    """One side's ids on disk, read with ``pread``: the lengths in memory, the start of every
    :data:`STRIDE`-th sentence, and a sentence's start is found from those."""

    def __init__(self, path: Path, dtype: np.dtype, lengths: np.ndarray, tokens: int) -> None:
        self.path, self.dtype, self.lengths = path, dtype, lengths  # lengths (N,) int32
        per_stride = (
            np.add.reduceat(lengths, np.arange(0, len(lengths), STRIDE), dtype=np.int64)
            if len(lengths)
            else np.zeros(0, dtype=np.int64)
        )  # (ceil(N / STRIDE),)
        self.starts = np.concatenate(([0], np.cumsum(per_stride)))  # (ceil(N / STRIDE) + 1,) int64
        self.typecode = {2: "H", 4: "i"}[dtype.itemsize]  # array.array's name for uint16 / int32
        if int(lengths.sum(dtype=np.int64)) != tokens or path.stat().st_size != tokens * dtype.itemsize:
            raise DataError(f"{path}: the ids do not add up to the lengths; delete the store to build it again")
        self.fd = os.open(path, os.O_RDONLY)

    def read(self, rows: np.ndarray) -> list[list[int]]:
        """The ids of sentences ``rows`` (B,), each a list."""
        within = rows % STRIDE  # (B,)
        first = rows - within  # (B,) the first sentence of each one's stride
        window = self.lengths[np.minimum(first[:, None] + np.arange(STRIDE), len(self.lengths) - 1)]  # (B, STRIDE)
        before = np.where(np.arange(STRIDE) < within[:, None], window, 0).sum(axis=1)  # (B,) ids before it there
        starts = (self.starts[rows // STRIDE] + before) * self.dtype.itemsize  # (B,) byte offsets
        sizes = self.lengths[rows].astype(np.int64) * self.dtype.itemsize  # (B,)
        fd, code = self.fd, self.typecode
        return [
            array.array(code, os.pread(fd, n, at)).tolist() if n else []
            for at, n in zip(starts.tolist(), sizes.tolist())
        ]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class TokenStore:
    """A built store, opened: the lengths in memory, the ids read from disk when asked for (see
    the module docstring)."""

    def __init__(self, path: Path) -> None:
        """Open the store in ``path``. Raises DataError when it is not a complete store."""
        self.path = Path(path)
        self._sides: list[_Side] = []
        try:
            self.meta: dict[str, Any] = json.loads((self.path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{self.path}: not a complete token store ({e}); delete it to build it again") from None
        if self.meta.get("version") != VERSION:
            raise DataError(f"{self.path}: a token store of another version; delete it to build it again")
        self.kind: str = self.meta["kind"]
        self.name: str = self.meta["name"]
        self.size: int = int(self.meta["pairs"])
        self._src = self._side("src")
        self.src_lengths = self._src.lengths  # (N,) int32
        self._tgt = self._side("tgt") if self.kind == "pairs" else self._src
        self.tgt_lengths = self._tgt.lengths  # (N,) int32
        self.labels: list[str] = list(self.meta.get("labels") or [])
        self.label_ids: Optional[np.ndarray] = None  # (N,) int32 into self.labels
        if self.kind == "labelled":
            self.label_ids = self._array("labels.ids", np.int32)
            self.tgt_lengths = np.ones(self.size, dtype=np.int32)  # one label

    def _array(self, name: str, dtype: Any) -> np.ndarray:
        array = np.fromfile(self.path / name, dtype=dtype)  # (N,)
        if len(array) != self.size:
            raise DataError(
                f"{self.path}: {name} has {len(array)} entries, expected {self.size}; "
                "delete the store to build it again"
            )
        return array

    def _side(self, side: str) -> _Side:
        info = self.meta[side]
        one = _Side(
            self.path / f"{side}.tok",
            np.dtype(info["dtype"]),
            self._array(f"{side}.len", np.int32),
            int(info["tokens"]),
        )
        self._sides.append(one)
        return one

    def close(self) -> None:
        """Close the files (the store is not read after)."""
        for side in self._sides:
            side.close()

    def __del__(self) -> None:
        self.close()

    def __len__(self) -> int:
        return self.size

    def sources(self, rows: np.ndarray) -> list[list[int]]:
        """The source ids of lines ``rows``."""
        return self._src.read(np.asarray(rows, dtype=np.int64).reshape(-1))

    def targets(self, rows: np.ndarray) -> list[list[int]]:
        """The target ids of lines ``rows`` (a classifier's: its label's index in :attr:`labels`)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.label_ids is not None:
            return [[i] for i in self.label_ids[rows].tolist()]
        return self._tgt.read(rows)

    def src(self, row: int) -> list[int]:
        """The source ids of line ``row``."""
        return self.sources(np.array([row]))[0]

    def tgt(self, row: int) -> list[int]:
        """The target ids of line ``row``."""
        return self.targets(np.array([row]))[0]

    @property
    def numeral_limits(self) -> dict[str, int]:
        """``max_integer_digits`` / ``max_decimal_digits`` over the numeral sources (stores built
        with ``data.normalize=numerals``; empty otherwise)."""
        return dict(self.meta.get("numerals") or {})

    def __repr__(self) -> str:
        return f"TokenStore({self.kind}, {self.size:,} pairs, {self.path})"


class CorpusMix:
    """Several stores read as one, for ``data.train`` naming several corpora: row ``r`` is row
    ``r - offsets[k]`` of store ``k``, where ``offsets[k] <= r < offsets[k + 1]``.

    It has what training reads of a :class:`TokenStore` (``size``, the length arrays, ids,
    labels, ``numeral_limits``), so length filtering and batching see one table. The length
    arrays are concatenated once and every store then reads through views of them: nothing is
    held twice. A classifier's labels are the union of the stores' (``label_ids`` index it).
    ``weights`` and ``splits``: each corpus's sampling weight and its name in ``data.train``.
    """

    def __init__(self, stores: Sequence[TokenStore], weights: Sequence[float], splits: Sequence[str]) -> None:
        if not stores or len({s.kind for s in stores}) != 1 or not len(stores) == len(weights) == len(splits):
            raise ValueError("a mix needs one or more stores of one kind, each with a weight and a split")
        self.stores, self.weights, self.splits = list(stores), [float(w) for w in weights], list(splits)
        self.kind: str = stores[0].kind
        self.name = " + ".join(s.name for s in stores)
        self.path = " + ".join(str(s.path) for s in stores)  # where the stores are, for messages
        self.offsets = np.concatenate(([0], np.cumsum([s.size for s in stores]))).astype(np.int64)  # (K + 1,)
        self.size = int(self.offsets[-1])
        self.src_lengths = np.concatenate([s.src_lengths for s in stores])  # (N,) int32
        if self.kind == "pairs":
            self.tgt_lengths = np.concatenate([s.tgt_lengths for s in stores])  # (N,) int32
        elif self.kind == "monolingual":
            self.tgt_lengths = self.src_lengths
        else:
            self.tgt_lengths = np.ones(self.size, dtype=np.int32)  # one label
        for store, a, b in zip(self.stores, self.offsets[:-1].tolist(), self.offsets[1:].tolist()):
            store.src_lengths = store._src.lengths = self.src_lengths[a:b]
            store.tgt_lengths = self.tgt_lengths[a:b]
            if self.kind == "pairs":
                store._tgt.lengths = store.tgt_lengths
        self.labels: list[str] = sorted(set().union(*(s.labels for s in stores)))
        self.label_ids: Optional[np.ndarray] = None  # (N,) int32 into self.labels
        if self.kind == "labelled":
            index = {label: i for i, label in enumerate(self.labels)}
            self.label_ids = np.concatenate(
                [np.asarray([index[x] for x in s.labels], dtype=np.int32)[s.label_ids] for s in stores]
            )
        self.meta: dict[str, Any] = {"kind": self.kind, "name": self.name, "pairs": self.size}
        for side in ("src", "tgt"):
            if all(side in s.meta for s in stores):
                self.meta[side] = {"tokens": sum(int(s.meta[side]["tokens"]) for s in stores)}

    def corpus_sizes(self, rows: np.ndarray) -> np.ndarray:
        """(K,) how many of ``rows`` (ascending mix rows) each corpus holds."""
        return np.diff(np.searchsorted(np.asarray(rows), self.offsets))

    def _read(self, rows: np.ndarray, side: str) -> list[list[int]]:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)  # (B,)
        which = np.searchsorted(self.offsets, rows, side="right") - 1  # (B,) the corpus of each row
        out: list[list[int]] = [[] for _ in range(len(rows))]
        for k in np.unique(which).tolist():
            at = np.flatnonzero(which == k)
            store = self.stores[k]
            got = (store.sources if side == "src" else store.targets)(rows[at] - self.offsets[k])
            for i, ids in zip(at.tolist(), got):
                out[i] = ids
        return out

    def sources(self, rows: np.ndarray) -> list[list[int]]:
        """The source ids of mix rows ``rows``."""
        return self._read(rows, "src")

    def targets(self, rows: np.ndarray) -> list[list[int]]:
        """The target ids of mix rows ``rows`` (a classifier's: its label's index in :attr:`labels`)."""
        if self.label_ids is not None:
            return [[i] for i in self.label_ids[np.asarray(rows, dtype=np.int64).reshape(-1)].tolist()]
        return self._read(rows, "tgt")

    @property
    def numeral_limits(self) -> dict[str, int]:
        """The largest of each store's :attr:`TokenStore.numeral_limits`."""
        limits: dict[str, int] = {}
        for store in self.stores:
            for key, value in store.numeral_limits.items():
                limits[key] = max(limits.get(key, value), value)
        return limits

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"CorpusMix({self.kind}, {self.size:,} pairs, {len(self.stores)} corpora: {self.path})"


# ----------------------------------------------------------------------------------- selection
@dataclass
class Selection:
    """The rows of a store that training uses (after the length filter), and their counts."""

    rows: np.ndarray  # (n,) int64 row numbers, ascending
    empty: int = 0
    too_short: int = 0
    too_long: int = 0


def select_pairs(store: TokenStore, max_src_tokens: int, max_tgt_tokens: int, min_tokens: int = 1) -> Selection:
    """The rows :func:`~seq2seq.data.batching.encode_pairs` keeps with ``drop=True``: neither
    side empty (or whitespace), both at least ``min_tokens`` long, the source at most
    ``max_src_tokens`` and the target with its EOS at most ``max_tgt_tokens`` (``<= 0``: no limit;
    ``max_tgt_tokens=1`` acts as 2)."""
    src, tgt = store.src_lengths, store.tgt_lengths  # (N,) each
    empty = (src == 0) | (tgt == 0)
    short = ~empty & ((src < min_tokens) | (tgt < min_tokens))
    long = np.zeros(len(src), dtype=bool)
    if max_src_tokens > 0:
        long |= src > max_src_tokens
    if max_tgt_tokens > 0:
        long |= tgt > max(1, max_tgt_tokens - 1)  # room for EOS
    long &= ~empty & ~short
    rows = np.flatnonzero(~(empty | short | long))
    return Selection(rows, int(empty.sum()), int(short.sum()), int(long.sum()))


def select_labelled(store: TokenStore, max_src_tokens: int) -> Selection:
    """The rows :func:`~seq2seq.data.batching.encode_labelled` keeps with ``drop=True``: a
    non-empty sentence of at most ``max_src_tokens`` ids (``<= 0``: no limit)."""
    src = store.src_lengths  # (N,)
    empty = src == 0
    long = ~empty & (src > max_src_tokens) if max_src_tokens > 0 else np.zeros(len(src), dtype=bool)
    rows = np.flatnonzero(~(empty | long))
    return Selection(rows, int(empty.sum()), 0, int(long.sum()))


class StoreExamples:
    """The training examples: selected rows of a store, read from it when a batch asks for them.

    ``label_map`` (classifiers): the class id of each of the store's labels.
    """

    def __init__(self, store: TokenStore, rows: np.ndarray, label_map: Optional[Sequence[int]] = None) -> None:
        self.store = store
        self.rows = np.asarray(rows, dtype=np.int32 if store.size < 2**31 else np.int64)  # (n,)
        self.label_map = None if label_map is None else np.asarray(label_map, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def src_lengths(self) -> np.ndarray:
        """(n,) source lengths of the examples."""
        return self.store.src_lengths[self.rows]

    @property
    def tgt_lengths(self) -> np.ndarray:
        """(n,) target lengths (without EOS) of the examples."""
        return self.store.tgt_lengths[self.rows]

    def examples(self, positions: Sequence[int]) -> list[Any]:
        """The :class:`~seq2seq.data.batching.Example` s at ``positions`` (indices into the
        selection), read from the store; ``Example.index`` is the store row, the line of the split."""
        from seq2seq.data.batching import Example

        rows = self.rows[np.asarray(positions, dtype=np.int64)]  # (B,)
        sources, targets = self.store.sources(rows), self.store.targets(rows)
        if self.label_map is not None:
            targets = [[i] for i in self.label_map[[t[0] for t in targets]].tolist()]
        return [Example(row, src, tgt) for row, src, tgt in zip(rows.tolist(), sources, targets)]
