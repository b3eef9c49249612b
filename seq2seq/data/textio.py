"""Reading text files strictly, with errors that name the file and line.

Files may be plain or gzip-compressed (detected by magic bytes, whatever the suffix). The text
must be UTF-8; a leading byte-order mark and the ``\\r`` of CRLF line ends are removed. Lines are
split on ``\\n`` only, so a stray ``\\r`` or a Unicode line separator inside a line never shifts the
line alignment of a parallel corpus.

:func:`read_lines` reads a whole file; :func:`iter_line_blocks` gives the same lines a block at a
time (a few MB), so a corpus of any size can be read without holding it in memory.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

from seq2seq.errors import DataError

PathLike = Union[str, os.PathLike]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"


def check_file(path: Path) -> None:
    """A DataError when ``path`` is missing or a directory (what reading it would say)."""
    if not path.exists():
        raise DataError(f"file not found: {path} (check the file name and data.path)")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a text file")


def _unreadable(path: Path, e: OSError) -> DataError:
    return DataError(f"cannot read {path}: {e.strerror or e} (check its permissions)")


def _bad_gzip(path: Path, e: BaseException) -> DataError:
    return DataError(f"{path}: corrupted or truncated gzip file ({e}); re-create or re-download it")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip; clear errors for missing/unreadable files."""
    check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _unreadable(path, e) from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise _bad_gzip(path, e) from None
    return raw


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def read_lines(path: PathLike) -> list[str]:
    """All lines of a UTF-8 text file (plain or gzip), without line ends.

    A leading BOM and one trailing ``\\r`` per line (CRLF files) are removed; everything else is
    kept verbatim, including empty lines, so line ``i`` of two parallel files stay aligned. A final
    line without ``\\n`` counts as a line; an empty file has no lines.

    Raises:
        DataError: the file is missing, a directory, unreadable, not valid UTF-8, or contains a
            NUL byte (the message names the file and the 1-based line).
    """
    p = Path(path)
    return decode_lines(_read_bytes(p), str(p))


def _decode(data: bytes, name: str, lines_before: int = 0) -> str:
    """UTF-8 ``data`` as text; a DataError naming the line (counted from ``lines_before``) of an
    invalid byte or a NUL."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = lines_before + _line_of(data, e.start)
        bad = data[e.start : e.start + 4]
        raise DataError(
            f"{name}:{line}: not valid UTF-8 (bytes {bad!r}); convert the text to UTF-8, "
            "e.g. with iconv -f latin1 -t utf-8"
        ) from None
    if "\x00" in text:
        line = lines_before + text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(
            f"{name}:{line}: contains a NUL byte; is it a binary or compressed file? "
            "Only UTF-8 text (optionally gzip) is supported"
        )
    return text


def decode_lines(data: bytes, name: str) -> list[str]:
    """The lines of UTF-8 ``data`` (as :func:`read_lines` gives them); ``name`` is used in errors."""
    text = _decode(data, name)
    if text.startswith(_BOM):
        text = text[1:]
    if not text:
        return []
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a newline
    elif lines[-1].endswith("\r"):
        lines[-1] = lines[-1][:-1]  # last line "...\r" without "\n"
    return lines


BLOCK_BYTES = 1 << 22  # what iter_line_blocks reads at a time (4 MiB: ~40k sentence pairs of one side)


def iter_line_blocks(path: PathLike, block_bytes: int = BLOCK_BYTES) -> Iterator[list[str]]:
    """The lines of a text file exactly as :func:`read_lines` gives them, in consecutive lists
    of about ``block_bytes`` of text each (never an empty list): a file of any size is read
    with a few blocks in memory. gzip files are decompressed as they are read.

    Raises:
        DataError: as :func:`read_lines`, with the same file and line in the message. A
            truncated gzip file is found at its end, after the lines before the damage.
    """
    p = Path(path)
    check_file(p)
    try:
        raw = open(p, "rb")  # noqa: SIM115 (closed below; the gzip reader wraps it)
    except OSError as e:
        raise _unreadable(p, e) from None
    with raw:
        stream: BinaryIO = raw
        try:
            if raw.read(2) == _GZIP_MAGIC:
                stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            raw.seek(0)
        except OSError as e:
            raise _unreadable(p, e) from None
        lines_before, first, rest = 0, True, b""
        while True:
            try:
                data = stream.read(block_bytes)
            except (EOFError, zlib.error) as e:
                raise _bad_gzip(p, e) from None
            except OSError as e:
                raise (_bad_gzip(p, e) if stream is not raw else _unreadable(p, e)) from None
            if not data:
                break
            data = rest + data if rest else data
            cut = data.rfind(b"\n") + 1
            if not cut:  # no line end yet: one long line, keep reading
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            text = _decode(block, str(p), lines_before)
            if first:
                text, first = text.removeprefix(_BOM), False
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            lines.pop()  # the block ends with a line end
            lines_before += len(lines)
            yield lines
        if rest:  # a last line without "\n"
            text = _decode(rest, str(p), lines_before)
            if first:
                text = text.removeprefix(_BOM)
                if not text:
                    return  # the file is a BOM alone: no lines
            yield [text[:-1] if text.endswith("\r") else text]


def check_text_file(path: PathLike) -> int:
    """Scan a text file and raise the errors :func:`read_lines` would; return its line count.

    Used to explain a failure of a faster reader (e.g. ``datasets``/pyarrow) with the file name
    and line number instead of a traceback.
    """
    return len(read_lines(path))
