"""Where token stores are kept, and building them (see :mod:`seq2seq.data.store` for the format).

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

:func:`cached_tokenizers` keeps the SentencePiece models trained on a split in the same cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from seq2seq.cpus import usable_cpus
from seq2seq.data.sources import TextSource, no_examples
from seq2seq.data.store import META, VERSION, TokenStore, token_dtype
from seq2seq.data.store_encode import _Encoded, _encoded_blocks, _Encoder
from seq2seq.data.store_key import store_key
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import DataError

log = logging.getLogger("seq2seq.data")

_TMP_PREFIX = ".tmp-"


# ------------------------------------------------------------------------------------- where
def default_cache_dir(source: TextSource) -> Path:
    """``.seq2seq-cache`` beside the split's first file when its directory is writable, else
    ``$XDG_CACHE_HOME/seq2seq`` (``~/.cache/seq2seq``)."""
    if source.files:
        beside = source.files[0].resolve().parent
        if os.access(beside, os.W_OK | os.X_OK):
            return beside / ".seq2seq-cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seq2seq"


def _slug(name: str) -> str:
    base = Path(name.split("[")[0]).name or "split"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:60]


def store_dir(cache_dir: Path, spec: dict[str, Any]) -> Path:
    """Where the store of ``spec`` is (or would be) in ``cache_dir``."""
    return Path(cache_dir) / f"{_slug(spec['source'])}-{store_key(spec)[:16]}"


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
    echo: bool = True,
) -> TokenStore:
    """Build the store of ``spec`` from ``source`` into ``directory`` (which must not exist
    yet), through a temporary directory renamed when complete; see the module docstring.

    ``workers``: processes that encode (0: one per core); ``echo``: log the store built. Raises
    DataError for bad data (the message names the file and line) and when no source line is
    non-blank.
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
            for block in _encoded_blocks(source.blocks(), encoder, workers or usable_cpus()):
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
    if echo:
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
    echo: bool = True,
) -> TokenStore:
    """The store of ``spec`` in ``cache_dir``: opened when it is there, else built
    (``build=False``: a DataError instead, for processes that wait for another to build it).
    ``echo``: log the store opened or built (one line)."""
    directory = store_dir(cache_dir, spec)
    if (directory / META).is_file():
        store = TokenStore(directory)
        if echo:
            log.info("token store of %s: %s pairs (%s)", source.name, f"{store.size:,}", directory)
        return store
    if not build:
        raise DataError(f"token store {directory} is missing (the first process of this machine builds it)")
    return build_store(directory, spec, source, tokenizers, workers, progress, echo)


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
