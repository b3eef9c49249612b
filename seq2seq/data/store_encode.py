"""Encoding a split's blocks of text into token ids for a token store being built
(:mod:`seq2seq.data.store_build`): in a pool of processes (one per core), or in the building
process when there is one block or one worker. Each block comes back with what the store's
``meta.json`` counts (non-blank sources, the digits of numeral sources).
"""

from __future__ import annotations

import itertools
import multiprocessing
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from seq2seq.data.normalize import numeral_digits, source_normalizer
from seq2seq.data.sources import Blocks
from seq2seq.data.store import token_dtype
from seq2seq.data.tokenizer import SpmTokenizer


@dataclass
class _Encoded:
    """One block of pairs, encoded (what a worker sends back)."""

    src_len: np.ndarray  # (n,) int32
    src_tok: np.ndarray  # (sum src_len,)
    tgt_len: Optional[np.ndarray]  # (n,) int32 (pairs)
    tgt_tok: Optional[np.ndarray]
    labels: Optional[list[str]]  # the block's label texts, in order of first appearance (labelled)
    label_ids: Optional[np.ndarray]  # (n,) int32 into labels
    non_blank: int  # sources with a non-blank character
    numerals: Optional[tuple[int, int]]  # most integer and decimal digits of the numeral sources


@dataclass
class _Encoder:
    """What encodes a block, in the building process or in a worker."""

    kind: str
    normalize: str
    src: SpmTokenizer
    tgt: SpmTokenizer
    threads: int = -1  # SentencePiece's own threads (1 in a worker: the pool has one process a core)

    def ids(self, tokenizer: SpmTokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Lengths (n,) int32 and the ids end to end, in the store's dtype for ``tokenizer``."""
        ids = tokenizer.encode_batch(texts, threads=self.threads)
        lengths = np.fromiter(map(len, ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter(
            itertools.chain.from_iterable(ids), dtype=token_dtype(tokenizer.vocab_size), count=int(lengths.sum())
        )
        return lengths, flat

    def __call__(self, block: tuple[list[str], list[str]]) -> _Encoded:
        src, tgt = block
        non_blank = sum(1 for s in src if s and not s.isspace())
        numerals = None
        if self.normalize != "none":
            src = list(map(source_normalizer(self.normalize), src))
            if self.normalize == "numerals":
                shapes = [shape for shape in map(numeral_digits, src) if shape is not None]
                if shapes:
                    numerals = (max(i for i, _ in shapes), max(d for _, d in shapes))
        if self.kind == "labelled":
            src_len, src_tok = self.ids(self.src, src)
            names: dict[str, int] = {}
            label_ids = np.fromiter((names.setdefault(t, len(names)) for t in tgt), dtype=np.int32, count=len(tgt))
            return _Encoded(src_len, src_tok, None, None, list(names), label_ids, non_blank, numerals)
        # Translation and autoencoders drop a pair with a whitespace-only side as empty: store it empty.
        src = ["" if s.isspace() else s for s in src]
        src_len, src_tok = self.ids(self.src, src)
        if self.kind == "monolingual":
            return _Encoded(src_len, src_tok, None, None, None, None, non_blank, numerals)
        tgt_len, tgt_tok = self.ids(self.tgt, ["" if t.isspace() else t for t in tgt])
        return _Encoded(src_len, src_tok, tgt_len, tgt_tok, None, None, non_blank, numerals)


_WORKER: dict[str, _Encoder] = {}


def _init_worker(kind: str, normalize: str, src: bytes, tgt: bytes) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the building process's to handle
    src_tok = SpmTokenizer(src)
    _WORKER["encoder"] = _Encoder(kind, normalize, src_tok, src_tok if tgt == src else SpmTokenizer(tgt), threads=1)


def _encode_in_worker(block: tuple[list[str], list[str]]) -> _Encoded:
    return _WORKER["encoder"](block)


def _pool_context() -> Any:
    """fork where there is one (Linux): workers start at once and need no imports."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _encoded_blocks(blocks: Blocks, encoder: _Encoder, workers: int) -> Iterator[_Encoded]:
    """The blocks encoded in order: in a pool of ``workers`` processes, or in this process
    when there is one block or one worker."""
    first = next(blocks, None)
    if first is None:
        return
    second = next(blocks, None)
    if second is None or workers <= 1:
        for block in itertools.chain([first], [second] if second is not None else [], blocks):
            yield encoder(block)
        return
    tgt = encoder.tgt.model_bytes
    pool = _pool_context().Pool(
        workers, initializer=_init_worker, initargs=(encoder.kind, encoder.normalize, encoder.src.model_bytes, tgt)
    )
    try:
        # imap reads ahead of the workers: at most a few blocks per worker wait in memory.
        yield from pool.imap(_encode_in_worker, itertools.chain([first, second], blocks))
        pool.close()
    finally:
        pool.terminate()
        pool.join()
