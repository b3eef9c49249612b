"""Semantic hashing and nearest neighbours over a corpus of sentence codes.

:class:`CodeIndex` holds one entry per corpus line, either a binary code (``kind="binary"``)
or a real-valued context vector (``kind="real"``), with the line's text. Searches:

- ``lookup(code, radius)`` (binary): the lines whose code is within Hamming distance
  ``radius``, found by hash-table lookup of the query code and of every code obtained by
  flipping up to ``radius`` of its bits; ranked by distance, then line number;
- ``rank(code, k)`` (binary): the ``k`` nearest lines by Hamming distance, by an exhaustive
  XOR + popcount over the corpus (vectorised: fast for 10^5-10^6 lines);
- ``nearest(vector, k)`` (real): the ``k`` nearest lines by cosine similarity.

The index file is a NumPy ``.npz`` read with ``allow_pickle=False`` (no code runs on load);
it records the checkpoint's weight hash so that queries are refused if encoded by another model.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from pathlib import Path
from typing import Union

import numpy as np

from seq2seq.errors import Seq2SeqError

FORMAT = 1
MAX_PROBES = 2_000_000  # bit-flip probes per lookup before we refuse (suggest rank())


def _pack_lines(lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    data = [s.encode("utf-8") for s in lines]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in data])
    return np.frombuffer(b"".join(data), dtype=np.uint8).copy(), offsets


class CodeIndex:
    """Binary codes or real vectors of a corpus, with its lines; see the module docstring."""

    def __init__(self, kind: str, values: np.ndarray, lines: list[str], model_hash: str = "", bits: int = 0) -> None:
        if kind not in ("binary", "real"):
            raise ValueError(f"index kind must be binary or real, got '{kind}'")
        if len(values) != len(lines):
            raise ValueError(f"{len(values)} codes for {len(lines)} lines")
        self.kind = kind
        self.lines = lines
        self.model_hash = model_hash
        if kind == "binary":
            self.bits = bits or values.shape[1]
            self.packed = values if values.dtype == np.uint8 and bits else np.packbits(values.astype(bool), axis=1)
            self._table: dict[bytes, list[int]] | None = None
        else:
            norms = np.linalg.norm(values, axis=1, keepdims=True)
            self.vectors = (values / np.maximum(norms, 1e-12)).astype(np.float32)  # unit rows
            self.bits = 0

    @classmethod
    def from_codes(cls, codes: np.ndarray, lines: list[str], model_hash: str = "") -> CodeIndex:
        """An index of binary codes (N, bits) bool."""
        return cls("binary", codes, lines, model_hash)

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, lines: list[str], model_hash: str = "") -> CodeIndex:
        """An index of real-valued vectors (N, d)."""
        return cls("real", vectors, lines, model_hash)

    def __len__(self) -> int:
        return len(self.lines)

    # ----------------------------------------------------------------- file format
    def save(self, path: Union[str, Path]) -> None:
        """Write the index to ``path`` (.npz) atomically."""
        target = Path(path)
        text, offsets = _pack_lines(self.lines)
        values = self.packed if self.kind == "binary" else self.vectors
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npz")
        try:
            np.savez(
                tmp,
                format=np.int64(FORMAT),
                kind=np.array(self.kind),
                values=values,
                bits=np.int64(self.bits),
                text=text,
                offsets=offsets,
                model_hash=np.array(self.model_hash),
            )
            os.replace(tmp, target)
        except OSError as e:
            raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Union[str, Path]) -> CodeIndex:
        """Read an index written by :meth:`save` (no pickle)."""
        p = Path(path)
        if p.is_dir():
            raise Seq2SeqError(f"index {p} is a directory; give the .npz file written by 'seq2seq hash'")
        if not p.is_file():
            raise Seq2SeqError(f"index file not found: {p} (write one with 'seq2seq hash')")
        try:
            with open(p, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise Seq2SeqError(f"cannot read index {p}: {e.strerror or e}") from None
        if magic != b"PK\x03\x04":  # every .npz is a zip archive
            raise Seq2SeqError(f"{p} is not a seq2seq index (not an .npz file); write one with 'seq2seq hash'")
        try:
            with np.load(p, allow_pickle=False) as f:
                if int(f["format"]) != FORMAT:
                    raise Seq2SeqError(
                        f"{p}: index format {int(f['format'])}, expected {FORMAT}; "
                        "rebuild it with this version's 'seq2seq hash'"
                    )
                kind, values, bits = str(f["kind"]), f["values"], int(f["bits"])
                text, offsets, model_hash = f["text"].tobytes(), f["offsets"], str(f["model_hash"])
            lines = [text[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
            return cls(kind, values, lines, model_hash, bits)
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as e:
            # UnicodeDecodeError is a ValueError
            reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise Seq2SeqError(
                f"{p} is not a seq2seq index or is corrupted ({reason}); rebuild it with 'seq2seq hash'"
            ) from None

    # ---------------------------------------------------------------------- search
    def _require(self, kind: str) -> None:
        if self.kind != kind:
            raise Seq2SeqError(f"this search needs a {kind} index; this one is {self.kind}")

    def _query_packed(self, code: np.ndarray) -> np.ndarray:
        code = np.asarray(code)
        if code.shape != (self.bits,):
            raise Seq2SeqError(f"query code has {code.size} bits; the index has {self.bits}")
        return np.packbits(code.astype(bool))

    def hamming(self, code: np.ndarray) -> np.ndarray:
        """(N,) Hamming distance of every corpus code to ``code`` (bits,)."""
        self._require("binary")
        q = self._query_packed(code)
        return np.bitwise_count(np.bitwise_xor(self.packed, q[None, :])).sum(axis=1, dtype=np.int64)

    def rank(self, code: np.ndarray, k: int) -> list[tuple[int, int]]:
        """The ``k`` nearest lines by Hamming distance: [(line, distance)], nearest first
        (ties by line number)."""
        d = self.hamming(code)
        k = min(k, len(d))
        # one unique key per line, (distance, line): which of the lines tied at the k-th
        # distance make the cut is then decided by line number too, not by argpartition
        key = d.astype(np.int64) * len(d) + np.arange(len(d), dtype=np.int64)
        top = np.argpartition(key, k - 1)[:k] if k < len(d) else np.arange(len(d))
        top = top[np.argsort(key[top])]
        return [(int(i), int(d[i])) for i in top]

    def lookup(self, code: np.ndarray, radius: int) -> list[tuple[int, int]]:
        """Lines within Hamming distance ``radius``: [(line, distance)] by hash lookups."""
        self._require("binary")
        probes = sum(math.comb(self.bits, r) for r in range(radius + 1))
        if probes > MAX_PROBES:
            raise Seq2SeqError(
                f"radius {radius} over {self.bits} bits needs {probes:,} lookups; use a smaller "
                "radius or rank by distance (--top K)"
            )
        if self._table is None:
            self._table = {}
            for i, row in enumerate(self.packed):
                self._table.setdefault(row.tobytes(), []).append(i)
        q = int.from_bytes(self._query_packed(code).tobytes(), "big")
        shift = 8 * self.packed.shape[1] - self.bits  # packbits pads the last byte on the right
        nbytes = self.packed.shape[1]
        found = []
        for r in range(radius + 1):
            for flips in itertools.combinations(range(self.bits), r):
                key = q
                for b in flips:
                    key ^= 1 << (shift + self.bits - 1 - b)
                for i in self._table.get(key.to_bytes(nbytes, "big"), ()):
                    found.append((i, r))
        return sorted(found, key=lambda x: (x[1], x[0]))

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest lines by cosine similarity: [(line, similarity)], best first."""
        self._require("real")
        v = np.asarray(vector, dtype=np.float32)
        if v.shape != (self.vectors.shape[1],):
            raise Seq2SeqError(f"query vector has {v.size} values; the index has {self.vectors.shape[1]}")
        sims = self.vectors @ (v / max(float(np.linalg.norm(v)), 1e-12))
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.lexsort((top, -sims[top]))]
        return [(int(i), float(sims[i])) for i in top]
