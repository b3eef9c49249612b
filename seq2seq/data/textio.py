"""Reading text files strictly, with errors that name the file and line.

Files may be plain or gzip-compressed (detected by magic bytes, whatever the suffix). The text
must be UTF-8; a leading byte-order mark and the ``\\r`` of CRLF line ends are removed. Lines are
split on ``\\n`` only, so a stray ``\\r`` or a Unicode line separator inside a line never shifts the
line alignment of a parallel corpus.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Union

from seq2seq.errors import DataError

PathLike = Union[str, os.PathLike]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip; clear errors for missing/unreadable files."""
    if not path.exists():
        raise DataError(f"file not found: {path} (check the file name and data.path)")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e} (check its permissions)") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(
                f"{path}: corrupted or truncated gzip file ({e}); re-create or re-download it"
            ) from None
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


def decode_lines(data: bytes, name: str) -> list[str]:
    """The lines of UTF-8 ``data`` (as :func:`read_lines` gives them); ``name`` is used in errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _line_of(data, e.start)
        bad = data[e.start : e.start + 4]
        raise DataError(
            f"{name}:{line}: not valid UTF-8 (bytes {bad!r}); convert the text to UTF-8, "
            "e.g. with iconv -f latin1 -t utf-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(
            f"{name}:{line}: contains a NUL byte; is it a binary or compressed file? "
            "Only UTF-8 text (optionally gzip) is supported"
        )
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


def check_text_file(path: PathLike) -> int:
    """Scan a text file and raise the errors :func:`read_lines` would; return its line count.

    Used to explain a failure of a faster reader (e.g. ``datasets``/pyarrow) with the file name
    and line number instead of a traceback.
    """
    return len(read_lines(path))
