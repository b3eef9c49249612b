"""Reading the ``text`` and ``tsv`` formats: local files read with
:func:`seq2seq.data.textio.iter_line_blocks` (strict UTF-8, gzip, line-exact, a few MB at a
time) and streamed as a :class:`~seq2seq.data.sources.TextSource`; a malformed line is a
:class:`DataError` naming the file and line. Parallel text (a pair of files, or
``source<TAB>target`` lines), an autoencoder's sentences and a classifier's ``sentence<TAB>label``
lines; and :func:`resolve_path`, which every format that reads a local file uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from seq2seq.config import DataConfig
from seq2seq.data.sources import Blocks, ParallelText, TextSource
from seq2seq.data.textio import check_file, iter_line_blocks
from seq2seq.errors import DataError


def _strip_cr(lines: list[str]) -> list[str]:
    """Remove one trailing ``\\r`` per line (CRLF leftovers); other text is kept verbatim."""
    return [s[:-1] if s.endswith("\r") else s for s in lines]


def _first_file(tried: list[Path]) -> Path | None:
    """The first of ``tried`` that is a file; None when there is none (a DataError when there is
    none but one of them is a directory)."""
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        for p in tried:
            if p.is_dir():
                raise DataError(f"{p} is a directory, expected a text file (check data.path and the split)")
    return found


def resolve_path(cfg: DataConfig, name: str) -> Path:
    """``name`` relative to ``cfg.path`` when that is set (absolute names are kept)."""
    p = Path(name).expanduser()
    if cfg.path and not p.is_absolute():
        return Path(cfg.path).expanduser() / p
    return p


# ------------------------------------------------------------------------------ parallel text
def _zip_files(a: Path, b: Path) -> Blocks:
    """Line ``i`` of ``a`` with line ``i`` of ``b``; a DataError with both counts when they differ."""
    blocks_a, blocks_b = iter_line_blocks(a), iter_line_blocks(b)
    lines_a: list[str] = []
    lines_b: list[str] = []
    count_a = count_b = 0
    while True:
        if not lines_a:
            lines_a = next(blocks_a, [])
            count_a += len(lines_a)
        if not lines_b:
            lines_b = next(blocks_b, [])
            count_b += len(lines_b)
        if not lines_a or not lines_b:
            break
        k = min(len(lines_a), len(lines_b))
        yield lines_a[:k], lines_b[:k]
        lines_a, lines_b = lines_a[k:], lines_b[k:]
    if lines_a or lines_b:
        count_a += sum(len(block) for block in blocks_a)
        count_b += sum(len(block) for block in blocks_b)
        raise DataError(
            f"line counts differ: {a} has {count_a} lines, {b} has {count_b}; "
            "parallel files must be aligned line by line"
        )


def _text_source(cfg: DataConfig, prefix: str) -> TextSource:
    base = resolve_path(cfg, prefix)
    files = []
    for lang in (cfg.src_lang, cfg.tgt_lang):
        tried = [Path(f"{base}.{lang}"), Path(f"{base}.{lang}.gz")]
        found = _first_file(tried)
        if found is None:
            raise DataError(
                f"data file not found for language '{lang}': tried {', '.join(map(str, tried))} "
                "(check data.path, data.src_lang/tgt_lang and the split prefix)"
            )
        files.append(found)
    return TextSource(f"{base}.{{{cfg.src_lang},{cfg.tgt_lang}}}", tuple(files), lambda: _zip_files(*files))


def _tsv_source(cfg: DataConfig, file: str) -> TextSource:
    path = resolve_path(cfg, file)
    check_file(path)

    def blocks() -> Blocks:
        n = 0
        for lines in iter_line_blocks(path):
            src, tgt = [], []
            for line in lines:
                n += 1
                parts = line.split("\t")
                if len(parts) != 2:
                    raise DataError(
                        f"{path}:{n}: expected 'source<TAB>target' (exactly one TAB), found {len(parts) - 1} TABs"
                    )
                src.append(parts[0])
                tgt.append(parts[1][:-1] if parts[1].endswith("\r") else parts[1])
            yield src, tgt

    return TextSource(str(path), (path,), blocks)


def _load_text(cfg: DataConfig, prefix: str) -> ParallelText:
    return _text_source(cfg, prefix).load()


def _load_tsv(cfg: DataConfig, file: str) -> ParallelText:
    return _tsv_source(cfg, file).load()


# ------------------------------------------------------------------ autoencoders and classifiers
def _tsv_rows(path: Path, skip_header: bool, columns: int, layout: str) -> Iterator[tuple[int, list[list[str]]]]:
    """Blocks of the rows of a TSV file (without the header line when ``skip_header``), each
    with the line number of its first row; every row must have ``columns`` fields
    (``columns=0``: any number, at least one)."""
    check_file(path)
    n = 0
    for lines in iter_line_blocks(path):
        first = n + 1
        rows = []
        for line in _strip_cr(lines):
            n += 1
            if n == 1 and skip_header:
                first += 1
                continue
            parts = line.split("\t")
            if columns and len(parts) != columns:
                raise DataError(
                    f"{path}:{n}: expected '{layout}' (exactly {columns - 1} TAB), found "
                    f"{len(parts) - 1} TABs"
                    + (" (is the first line a header? set data.skip_header=true)" if n == 1 else "")
                )
            rows.append(parts)
        if rows:
            yield first, rows


def _monolingual_text_source(cfg: DataConfig, split: str) -> TextSource:
    """An autoencoder's ``text`` split: a file (plain or .gz) or a prefix completed with ``.SRC_LANG``."""
    base = resolve_path(cfg, split)
    tried = [base, Path(f"{base}.{cfg.src_lang}"), Path(f"{base}.{cfg.src_lang}.gz")]
    found = _first_file(tried)
    if found is None:
        raise DataError(f"data file not found: tried {', '.join(map(str, tried))} (check data.path and the split)")

    def text_blocks() -> Blocks:
        for lines in iter_line_blocks(found):
            lines = _strip_cr(lines)
            yield lines, lines

    return TextSource(str(found), (found,), text_blocks, monolingual=True)


def _tsv_file_source(
    cfg: DataConfig,
    split: str,
    columns: int,
    layout: str,
    pairs: Callable[[Path, int, list[list[str]]], tuple[list[str], list[str]]],
    monolingual: bool = False,
) -> TextSource:
    """A ``tsv`` split read with :func:`_tsv_rows` (``columns``, ``layout`` as there):
    ``pairs(path, first, rows)`` makes a block of pairs of a block of rows (``first``: the line
    number of its first row)."""
    path = resolve_path(cfg, split)
    check_file(path)

    def blocks() -> Blocks:
        for first, rows in _tsv_rows(path, cfg.skip_header, columns, layout):
            yield pairs(path, first, rows)

    return TextSource(str(path), (path,), blocks, monolingual)


def _monolingual_tsv_source(cfg: DataConfig, split: str) -> TextSource:
    """An autoencoder's ``tsv`` split: the first column."""

    def sentences(path: Path, first: int, rows: list[list[str]]) -> tuple[list[str], list[str]]:
        lines = [r[0] for r in rows]
        return lines, lines

    return _tsv_file_source(cfg, split, 0, "sentence", sentences, monolingual=True)


def _labelled_tsv_source(cfg: DataConfig, split: str) -> TextSource:
    """A classifier's ``tsv`` split: ``sentence<TAB>label`` lines (``data.skip_header`` for a header line)."""

    def labelled(path: Path, first: int, rows: list[list[str]]) -> tuple[list[str], list[str]]:
        labels = [r[1].strip() for r in rows]
        for n, label in enumerate(labels, start=first):
            if not label:
                raise DataError(f"{path}:{n}: the label (second column) is empty")
        return [r[0] for r in rows], labels

    return _tsv_file_source(cfg, split, 2, "sentence<TAB>label", labelled)
