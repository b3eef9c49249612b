"""Loading parallel text (source/target sentence pairs) in the formats of :class:`DataConfig`.

``text`` and ``tsv`` files are read with :func:`seq2seq.data.textio.iter_line_blocks` (strict
UTF-8, gzip, line-exact, a few MB at a time); ``jsonl``, ``disk`` and ``hub`` go through Hugging
Face ``datasets``. Every problem a user can fix becomes a :class:`DataError` that names the file
(and line, when there is one)::

    train = load_parallel(cfg.data, cfg.data.train)   # ParallelText(src=[...], tgt=[...], name=...)

A split of any size is read without holding it in memory through a :class:`TextSource`
(:func:`open_parallel`, :func:`open_monolingual`, :func:`open_labelled`): blocks of pairs, read
again each time they are asked for. The ``load_*`` functions collect the same blocks into a
:class:`ParallelText`, so both ways read the same pairs and raise the same errors. ``jsonl``,
``disk`` and ``hub`` splits are not streamed yet: their source loads the split when it is read.

The readers are in :mod:`seq2seq.data.text_formats` (``text``, ``tsv``) and
:mod:`seq2seq.data.hf_formats` (``jsonl``, ``disk``, ``hub``), the types they give in
:mod:`seq2seq.data.sources`; this module chooses the reader for the format and the task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.config import DataConfig
from seq2seq.data.hf_formats import _dataset_files, _load_disk, _load_hub, _load_jsonl
from seq2seq.data.sources import Blocks, ParallelText, TextSource, _require_examples
from seq2seq.data.text_formats import (
    _labelled_tsv_source,
    _load_text,
    _load_tsv,
    _monolingual_text_source,
    _monolingual_tsv_source,
    _text_source,
    _tsv_source,
)
from seq2seq.errors import DataError

__all__ = [
    "FORMATS",
    "Corpora",
    "ParallelText",
    "TextSource",
    "load_labelled",
    "load_monolingual",
    "load_parallel",
    "open_labelled",
    "open_monolingual",
    "open_parallel",
]

FORMATS = ("text", "tsv", "jsonl", "disk", "hub")


_LOADERS = {
    "text": _load_text,
    "tsv": _load_tsv,
    "jsonl": _load_jsonl,
    "disk": _load_disk,
    "hub": _load_hub,
}


def _loaded_source(
    name: str, files: tuple[Path, ...], load: Callable[[], ParallelText], monolingual: bool = False
) -> TextSource:
    """A source that loads its split (in memory) each time it is read: jsonl, disk, hub."""

    def blocks() -> Blocks:
        text = load()
        step = 50_000
        for i in range(0, len(text), step):
            src = text.src[i : i + step]
            yield src, src if monolingual else text.tgt[i : i + step]

    return TextSource(name, files, blocks, monolingual)


def _check_split(cfg: DataConfig, split: str) -> None:
    if cfg.format not in _LOADERS:
        raise DataError(f"unknown data.format '{cfg.format}' (use one of {', '.join(FORMATS)})")
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")


def open_parallel(cfg: DataConfig, split: str) -> TextSource:
    """One split of parallel text as a :class:`TextSource` (``split`` as in
    :func:`load_parallel`). Missing files are found here; errors inside them when read."""
    _check_split(cfg, split)
    if cfg.format == "text":
        return _text_source(cfg, split)
    if cfg.format == "tsv":
        return _tsv_source(cfg, split)
    files, name = _dataset_files(cfg, split)
    return _loaded_source(name, files, lambda: _LOADERS[cfg.format](cfg, split))


def load_parallel(cfg: DataConfig, split: str) -> ParallelText:
    """Load one split: ``split`` is the value of ``cfg.train``/``cfg.valid``/``cfg.test``.

    Its meaning depends on ``cfg.format`` (see :class:`DataConfig`): a file prefix (``text``), a
    file (``tsv``, ``jsonl``; relative to ``cfg.path`` when set) or a split name (``disk``,
    ``hub``). Texts are kept verbatim except for a trailing ``\\r``; empty lines are kept so that
    line ``i`` is pair ``i``.

    Raises:
        DataError: missing files (listing the paths tried), unequal line counts (naming both files
            and counts), malformed lines/records (naming file and line), missing language keys,
            no line with a non-blank source (an empty file).
    """
    _check_split(cfg, split)
    return _require_examples(_LOADERS[cfg.format](cfg, split))


# ------------------------------------------------------------------ autoencoders and classifiers
def open_monolingual(cfg: DataConfig, split: str) -> TextSource:
    """One split of monolingual text for an autoencoder as a :class:`TextSource` of pairs
    (sentence, the same sentence); see :func:`load_monolingual`."""
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "text":
        return _monolingual_text_source(cfg, split)
    if cfg.format == "tsv":
        return _monolingual_tsv_source(cfg, split)
    one_column = dataclasses.replace(cfg, tgt_lang=cfg.src_lang)
    _check_split(cfg, split)
    files, name = _dataset_files(cfg, split)
    return _loaded_source(name, files, lambda: load_parallel(one_column, split), monolingual=True)


def load_monolingual(cfg: DataConfig, split: str) -> ParallelText:
    """One split of monolingual text for an autoencoder, as pairs (sentence, the same sentence).

    ``text``: ``split`` is a file (plain or .gz) or a prefix completed with ``.SRC_LANG``;
    ``tsv``: the first column; ``jsonl``/``disk``/``hub``: the column (or translation key)
    ``data.src_lang``. Empty lines are kept, so line ``i`` is pair ``i``.
    """
    return _require_examples(open_monolingual(cfg, split).load())


def open_labelled(cfg: DataConfig, split: str) -> TextSource:
    """One split of labelled sentences for a classifier as a :class:`TextSource` of pairs
    (sentence, label text); see :func:`load_labelled`."""
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "tsv":
        return _labelled_tsv_source(cfg, split)
    if cfg.format == "text":
        raise DataError("task=classification reads data.format=tsv (sentence<TAB>label) or jsonl/disk/hub columns")
    _check_split(cfg, split)
    files, name = _dataset_files(cfg, split)

    def load() -> ParallelText:
        text = load_parallel(cfg, split)
        return ParallelText(src=text.src, tgt=[t.strip() for t in text.tgt], name=text.name)

    return _loaded_source(name, files, load)


def load_labelled(cfg: DataConfig, split: str) -> ParallelText:
    """One split of labelled sentences for a classifier, as pairs (sentence, label text).

    ``tsv``: ``sentence<TAB>label`` lines (``data.skip_header`` for a header line);
    ``jsonl``/``disk``/``hub``: the columns ``data.src_lang`` (sentence) and ``data.tgt_lang``
    (label, as text).
    """
    text = open_labelled(cfg, split).load()
    return _require_examples(text) if cfg.format == "tsv" else text


# ------------------------------------------------------------------ several training corpora
@dataclass
class Corpora(TextSource):
    """Several training corpora (``data.train`` as a list) read one after the other, as one
    source: what SentencePiece is trained on (every pair once, whatever the weights). ``parts``
    are the corpora's own sources, each tokenized into its own store; ``weights`` their weights."""

    parts: tuple[TextSource, ...] = ()
    weights: tuple[float, ...] = ()
    splits: tuple[str, ...] = ()  # as data.train names them

    @classmethod
    def of(cls, parts: list[TextSource], weights: list[float], splits: list[str]) -> Corpora:
        def blocks() -> Blocks:
            for part in parts:
                yield from part.blocks()

        files = tuple(f for part in parts for f in part.files)
        monolingual = all(part.monolingual for part in parts)
        name = " + ".join(part.name for part in parts)
        return cls(name, files, blocks, monolingual, tuple(parts), tuple(weights), tuple(splits))

    def identity(self) -> list[Any]:
        return [part.identity() for part in self.parts]

    def count_hint(self) -> int:
        hints = [part.count_hint() for part in self.parts]
        return sum(hints) if all(hints) else 0
