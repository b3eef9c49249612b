"""The common types of loaded text: :class:`ParallelText` (a split in memory) and
:class:`TextSource` (a split read a block of pairs at a time, again each time it is asked for),
and the error for a split without examples. The readers of each format are in
:mod:`seq2seq.data.text_formats` and :mod:`seq2seq.data.hf_formats`; :mod:`seq2seq.data.loading`
chooses between them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.errors import DataError

#: Blocks of aligned pairs: (sources, targets), lists of equal length (never empty).
Blocks = Iterator[tuple[list[str], list[str]]]


@dataclass
class ParallelText:
    """Aligned sentence pairs: ``src[i]`` translates to ``tgt[i]``; ``name`` says where from."""

    src: list[str]
    tgt: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.src)

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise DataError(f"{self.name}: {len(self.src)} source but {len(self.tgt)} target sentences")


@dataclass
class TextSource:
    """One split read a block of pairs at a time: :meth:`blocks` reads it (again) from the start.

    ``files``: the local files it reads (what a cache of the split is keyed by; empty for a hub
    dataset). ``monolingual``: the target is the source (an autoencoder's split); its blocks
    give the same list twice.
    """

    name: str
    files: tuple[Path, ...]
    read: Callable[[], Blocks]
    monolingual: bool = False

    def blocks(self) -> Blocks:
        """The pairs in order, in blocks of a few MB of text (lists of equal length)."""
        return self.read()

    def require_examples(self) -> None:
        """A DataError, as :func:`load_parallel` gives, when no source sentence is non-blank
        (reads up to the first that is)."""
        total = 0
        for src, _ in self.blocks():
            if any(s.strip() for s in src):
                return
            total += len(src)
        raise no_examples(self.name, total)

    def texts(self, side: str) -> Iterator[str]:
        """The sentences of one side (``src`` or ``tgt``), streamed."""
        k = ("src", "tgt").index(side)
        for block in self.blocks():
            yield from block[k]

    def map_sources(self, fn: Callable[[str], str]) -> TextSource:
        """This source with ``fn`` applied to every source sentence (the target of a
        monolingual source follows its source)."""
        read = self.read

        def blocks() -> Blocks:
            for src, tgt in read():
                new = list(map(fn, src))
                yield new, new if self.monolingual else tgt

        return dataclasses.replace(self, read=blocks)

    def load(self) -> ParallelText:
        """All pairs in memory (small splits: validation, tests)."""
        src: list[str] = []
        tgt: list[str] = []
        for s, t in self.blocks():
            src += s
            if not self.monolingual:
                tgt += t
        return ParallelText(src=src, tgt=list(src) if self.monolingual else tgt, name=self.name)

    def identity(self) -> list[Any]:
        """What says whether the split changed: each file's path, size and modification time;
        for a split without local files, a SHA-256 of its text (which reads it)."""
        if self.files:
            stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files]
            return [list(x) for x in stats]
        digest = hashlib.sha256()
        for src, tgt in self.blocks():
            for s, t in zip(src, tgt):
                digest.update(s.encode("utf-8", "surrogatepass") + b"\t" + t.encode("utf-8", "surrogatepass") + b"\n")
        return [self.name, digest.hexdigest()]

    def count_hint(self) -> int:
        """The number of lines of the first file when it is plain text (0: unknown), for a
        progress bar; counted fast, without decoding."""
        if not self.files or not self.files[0].is_file():
            return 0
        with open(self.files[0], "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                return 0
            f.seek(0)
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))


def no_examples(name: str, total: int) -> DataError:
    """The error for a split without an example with a non-blank source (``total`` lines)."""
    what = "no lines" if not total else f"only empty or blank lines ({total})"
    return DataError(f"{name}: {what}, so nothing to train or validate on; check the file and data.train/data.valid")


# ------------------------------------------------------------------------------------ helpers
def _require_examples(text: ParallelText) -> ParallelText:
    """``text`` itself; a DataError when it has no example with a non-blank source."""
    if not any(s.strip() for s in text.src):
        raise no_examples(text.name, len(text))
    return text
