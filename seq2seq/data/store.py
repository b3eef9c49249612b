"""Training data tokenized once, read from disk after: the token store.

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

**Key.** A store is found again by a SHA-256 of what it was built from (:func:`store_key`): the
split's files (path, size, modification time; a hash of the text for a hub dataset), how they
are read (format, languages, header), the source normalisation, the SentencePiece model(s)
(fingerprints) and :data:`VERSION`. Any change gives another key, so another store; old ones
are left where they are (delete the cache directory to reclaim the space).

**Where.** ``data.cache_dir``; by default ``.seq2seq-cache/`` in the directory of the training
data, or ``$XDG_CACHE_HOME/seq2seq`` (``~/.cache/seq2seq``) when that directory is not writable
or the split has no local files (:func:`default_cache_dir`).

**Building** (:func:`open_store`) streams the split (it is never all in memory), encodes blocks
of a few MB in a pool of processes (one per core; a split of one block is encoded in-process,
where SentencePiece uses every core itself), and shows a progress bar. It writes into a
temporary directory beside the store and renames it into place once ``meta.json`` is written:
an error or Ctrl-C removes the temporary directory, a killed build leaves one that is never
read (and is removed by the next build of that store). Two processes building the same store at
once both succeed; the first rename wins.

**Reading.** Opening a store reads the length arrays (8 bytes a pair; 4 more for labels) and
keeps the start of every :data:`STRIDE`-th sentence; a batch's ids are read with ``pread``
(:meth:`TokenStore.sources`). So a training process's resident memory does not grow with the
corpus nor with the batches it has read: ids read through a memory map would stay in its
resident size (with the kernel's fault-around, 4,000 random pairs of a 5M-pair store added
~350 MB), although they are the file cache's pages.

**Why flat files, not Hugging Face ``datasets``' Arrow cache** (``benchmarks/store_format.py``:
1M Multi30k pairs, 2 workers, an 8k BPE model; figures in ``docs/performance.md``, "Training
data on disk"): building takes about as long (SentencePiece does most of the work; Arrow also
writes a table of the text first), the store is a quarter of Arrow's size on disk (63 vs 261
MB), a batch's pairs are read in 5.6 instead of 13 microseconds a pair, and the reading
process held 18 MB more after opening it and reading 40,000 random pairs (its length arrays)
against 78 MB more with Arrow's memory-mapped table. And the format is a few numpy calls, with
nothing of ``datasets`` (its fingerprints, its cache files) between the data and the trainer.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from seq2seq.data.loading import Blocks, TextSource, no_examples
from seq2seq.data.normalize import numeral_digits, source_normalizer
from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair
from seq2seq.errors import DataError

log = logging.getLogger("seq2seq.data")

VERSION = 1  # of the layout and of what is stored; a change makes every store be built again
STRIDE = 32  # an opened store keeps the start of every STRIDE-th sentence in memory
KINDS = ("pairs", "monolingual", "labelled")
META = "meta.json"
_TMP_PREFIX = ".tmp-"


# ------------------------------------------------------------------------------ where and key
def default_cache_dir(source: TextSource) -> Path:
    """``.seq2seq-cache`` beside the split's first file when its directory is writable, else
    ``$XDG_CACHE_HOME/seq2seq`` (``~/.cache/seq2seq``)."""
    if source.files:
        beside = source.files[0].resolve().parent
        if os.access(beside, os.W_OK | os.X_OK):
            return beside / ".seq2seq-cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seq2seq"


def store_key(spec: dict[str, Any]) -> str:
    """A SHA-256 of ``spec`` (JSON with sorted keys): equal for equal inputs."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def store_spec(
    kind: str, source: TextSource, reading: dict[str, Any], normalize: str, tokenizers: TokenizerPair
) -> dict[str, Any]:
    """What a store of ``source`` is built from (its key is :func:`store_key` of this).

    ``reading``: the settings that decide what is read from the files (format, languages...);
    ``normalize``: the source normalisation (``data.normalize``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown store kind {kind!r} (one of {', '.join(KINDS)})")
    return {
        "version": VERSION,
        "kind": kind,
        "source": source.name,
        "identity": source.identity(),
        "reading": reading,
        "normalize": normalize,
        "src_tokenizer": tokenizers.src.fingerprint,
        "tgt_tokenizer": tokenizers.tgt.fingerprint if kind == "pairs" else None,
    }


def _slug(name: str) -> str:
    base = Path(name.split("[")[0]).name or "split"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:60]


def store_dir(cache_dir: Path, spec: dict[str, Any]) -> Path:
    """Where the store of ``spec`` is (or would be) in ``cache_dir``."""
    return Path(cache_dir) / f"{_slug(spec['source'])}-{store_key(spec)[:16]}"


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


# ---------------------------------------------------------------------------- encoding blocks
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


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 for a vocabulary of at most 65,536 ids, else int32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.int32)


_WORKER: dict[str, _Encoder] = {}


def _init_worker(kind: str, normalize: str, src: bytes, tgt: bytes) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the building process's to handle
    src_tok = SpmTokenizer(src)
    _WORKER["encoder"] = _Encoder(kind, normalize, src_tok, src_tok if tgt == src else SpmTokenizer(tgt), threads=1)


def _encode_in_worker(block: tuple[list[str], list[str]]) -> _Encoded:
    return _WORKER["encoder"](block)


# ---------------------------------------------------------------------------------- building
class _Writer:
    """Appends encoded blocks to the files of a store being built in ``directory``."""

    def __init__(self, directory: Path, kind: str, tokenizers: TokenizerPair) -> None:
        self.directory, self.kind = directory, kind
        sides = ["src", "tgt"] if kind == "pairs" else ["src"]
        self.dtypes = {"src": token_dtype(tokenizers.src.vocab_size), "tgt": token_dtype(tokenizers.tgt.vocab_size)}
        self.files = {
            f"{side}.{ext}": open(directory / f"{side}.{ext}", "wb")  # noqa: SIM115 (closed in close())
            for side in sides
            for ext in ("tok", "len")
        }
        if kind == "labelled":
            self.files["labels.ids"] = open(directory / "labels.ids", "wb")  # noqa: SIM115
        self.tokens = dict.fromkeys(sides, 0)
        self.pairs = self.non_blank = 0
        self.labels: dict[str, int] = {}
        self.numerals: Optional[tuple[int, int]] = None

    def add(self, block: _Encoded) -> None:
        sides = [("src", block.src_len, block.src_tok)]
        if block.tgt_len is not None and block.tgt_tok is not None:
            sides.append(("tgt", block.tgt_len, block.tgt_tok))
        for side, lengths, tokens in sides:
            self.files[f"{side}.tok"].write(tokens.tobytes())
            self.files[f"{side}.len"].write(lengths.tobytes())
            self.tokens[side] += int(lengths.sum())
        if block.labels is not None and block.label_ids is not None:
            remap = np.array([self.labels.setdefault(t, len(self.labels)) for t in block.labels], dtype=np.int32)
            self.files["labels.ids"].write(remap[block.label_ids].tobytes())
        if block.numerals is not None:
            old = self.numerals or (0, 0)
            self.numerals = (max(old[0], block.numerals[0]), max(old[1], block.numerals[1]))
        self.pairs += len(block.src_len)
        self.non_blank += block.non_blank

    def close(self) -> None:
        for f in self.files.values():
            f.close()

    def meta(self, spec: dict[str, Any], seconds: float) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "version": VERSION,
            "kind": self.kind,
            "name": spec["source"],
            "pairs": self.pairs,
            "non_blank_sources": self.non_blank,
            "seconds": round(seconds, 3),
            "spec": spec,
        }
        for side, tokens in self.tokens.items():
            meta[side] = {"dtype": self.dtypes[side].name, "tokens": tokens}
        if self.kind == "labelled":
            meta["labels"] = list(self.labels)
        if self.numerals is not None:
            meta["numerals"] = {"max_integer_digits": self.numerals[0], "max_decimal_digits": self.numerals[1]}
        return meta


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


def _remove_stale(cache_dir: Path, final: Path) -> None:
    """Temporary directories of earlier builds of ``final`` whose process is gone."""
    for tmp in cache_dir.glob(f"{_TMP_PREFIX}{final.name}-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


def build_store(
    directory: Path,
    spec: dict[str, Any],
    source: TextSource,
    tokenizers: TokenizerPair,
    workers: int = 0,
    progress: bool = True,
) -> TokenStore:
    """Build the store of ``spec`` from ``source`` into ``directory`` (which must not exist
    yet), through a temporary directory renamed when complete; see the module docstring.

    ``workers``: processes that encode (0: one per core). Raises DataError for bad data (the
    message names the file and line) and when no source line is non-blank.
    """
    from tqdm.auto import tqdm

    kind = spec["kind"]
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(directory.parent, directory)
    tmp = directory.parent / f"{_TMP_PREFIX}{directory.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    start = time.time()
    try:
        writer = _Writer(tmp, kind, tokenizers)
        encoder = _Encoder(kind, spec["normalize"], tokenizers.src, tokenizers.tgt)
        total = source.count_hint() if progress else 0
        bar = tqdm(
            total=total or None,
            desc=f"tokenizing {Path(source.name).name}",
            unit=" pairs",
            unit_scale=True,
            disable=not progress,
            dynamic_ncols=True,
            mininterval=1.0,
            leave=False,
        )
        try:
            for block in _encoded_blocks(source.blocks(), encoder, workers or _cpu_count()):
                writer.add(block)
                bar.update(len(block.src_len))
        finally:
            bar.close()
            writer.close()
        if not writer.non_blank:
            raise no_examples(source.name, writer.pairs)
        meta = writer.meta(spec, time.time() - start)
        with open(tmp / META, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.rename(tmp, directory)
        except OSError:
            if not (directory / META).is_file():  # another process's complete store is fine
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "token store of %s: %s pairs, %s source tokens, built in %.1f s (%s)",
        source.name,
        f"{writer.pairs:,}",
        f"{writer.tokens['src']:,}",
        time.time() - start,
        directory,
    )
    return TokenStore(directory)


def open_store(
    cache_dir: Path,
    spec: dict[str, Any],
    source: TextSource,
    tokenizers: TokenizerPair,
    build: bool = True,
    workers: int = 0,
    progress: bool = True,
) -> TokenStore:
    """The store of ``spec`` in ``cache_dir``: opened when it is there, else built
    (``build=False``: a DataError instead, for processes that wait for another to build it)."""
    directory = store_dir(cache_dir, spec)
    if (directory / META).is_file():
        store = TokenStore(directory)
        log.info("token store of %s: %s pairs (%s)", source.name, f"{store.size:,}", directory)
        return store
    if not build:
        raise DataError(f"token store {directory} is missing (the first process of this machine builds it)")
    return build_store(directory, spec, source, tokenizers, workers, progress)


def cached_tokenizers(cache_dir: Path, spec: dict[str, Any], train: Callable[[], TokenizerPair]) -> TokenizerPair:
    """SentencePiece models trained on a split, kept in ``cache_dir`` under a key of ``spec``
    (what they are trained on and how) and of the SentencePiece version: ``train()`` runs only
    when they are not there. SentencePiece samples a split larger than
    ``tokenizer.max_sentences`` at random, so two trainings can differ: the cache makes every
    run on the same data use the same models, and so the same token store. The cache is a
    convenience: when it cannot be written the models are used all the same."""
    import sentencepiece

    key = store_key({**spec, "version": VERSION, "sentencepiece": sentencepiece.__version__})
    directory = Path(cache_dir) / f"spm-{_slug(spec['source'])}-{key[:16]}"
    if (directory / META).is_file():
        log.info("SentencePiece models of %s from %s", spec["source"], directory)
        return TokenizerPair.load(directory)
    tokenizers = train()
    tmp = directory.parent / f"{_TMP_PREFIX}{directory.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tokenizers.save(tmp)
        (tmp / META).write_text(json.dumps({"version": VERSION, "spec": spec}, indent=1), encoding="utf-8")
        os.rename(tmp, directory)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (directory / META).is_file():
            log.warning("could not keep the SentencePiece models in %s (%s)", directory, e.strerror or e)
    return tokenizers


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
