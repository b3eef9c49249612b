"""Reading input lines: all at once (:func:`read_input_lines`), or in windows as they arrive
(:class:`InputWindows`: gzip detected from the first bytes, a pipe's pauses end a window), and
counting them (:func:`count_input_lines`)."""

from __future__ import annotations

import os
import select
import stat
import sys
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Callable, Optional

from seq2seq.errors import DataError, Seq2SeqError


def read_input_lines(path: Optional[str]) -> list[str]:
    """Lines of ``path`` (or stdin when None / "-"), with clear errors for bad encodings."""
    from seq2seq.data.textio import decode_lines, read_lines

    if path and path != "-":
        return read_lines(path)
    if sys.stdin is None:  # started with stdin closed
        raise Seq2SeqError("no input: stdin is closed; give --input FILE")
    return decode_lines(sys.stdin.buffer.read(), "<stdin>")


# ---------------------------------------------------------------- streaming input
_READ_BYTES = 1 << 16  # what one read from a pipe asks for


def is_stream(path: Optional[str]) -> bool:
    """stdin, or a path that is a pipe, a terminal or a device rather than a regular file."""
    if not path or path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # the file reader says what is wrong with it
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _pipe_line_chunks(stream: BinaryIO, name: str) -> Iterator[tuple[list[str], bool]]:
    """The lines of ``stream`` (as :func:`read_input_lines` gives them; gzip is decompressed) as
    they arrive: (lines, paused) after each read, ``paused`` when no more bytes are ready yet."""
    # The file reader's own decoding, so that errors and line numbers read the same.
    from seq2seq.data.textio import _decode

    fd: Optional[int]
    try:
        fd = stream.fileno()
    except (OSError, AttributeError, ValueError):
        fd = None
    read: Callable[[], bytes] = (
        (lambda: os.read(fd, _READ_BYTES))
        if fd is not None
        else (lambda: getattr(stream, "read1", stream.read)(_READ_BYTES))
    )
    unzip: Optional[Any] = None
    rest, head, first, lines_before, eof = b"", b"", True, 0, False
    while not eof:
        try:
            data = read()
        except OSError as e:
            raise Seq2SeqError(f"cannot read {name}: {e.strerror or e}") from None
        eof = not data
        if head is not None:  # the first two bytes say whether it is gzip
            head += data
            if len(head) < 2 and not eof and head == b"\x1f":  # (a single "\n" is translated at once)
                continue
            data, head = head, None  # type: ignore[assignment]
            if data[:2] == b"\x1f\x8b":
                unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if unzip is not None:
            try:
                plain = b""
                while data:
                    plain += unzip.decompress(data)
                    data = b""
                    if unzip.eof and unzip.unused_data:  # another gzip member follows
                        data, unzip = unzip.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS)
                if eof and not unzip.eof:
                    raise zlib.error("the stream ends inside the compressed data")
            except zlib.error as e:
                raise DataError(f"{name}: corrupted or truncated gzip data ({e})") from None
            data = plain
        data = rest + data if rest else data
        cut = len(data) if eof else data.rfind(b"\n") + 1
        block, rest = data[:cut], data[cut:]
        lines: list[str] = []
        if block:
            text = _decode(block, name, lines_before)
            if first:
                text, first = text.removeprefix("\ufeff"), False
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            if eof and lines[-1] != "":
                if lines[-1].endswith("\r"):
                    lines[-1] = lines[-1][:-1]  # a last line "...\r" without "\n"
            else:
                lines.pop()  # the block ends with a line end
            lines_before += len(lines)
        paused = not eof and fd is not None and not select.select([fd], [], [], 0)[0]
        if lines or paused:
            yield lines, paused


def _line_chunks(path: Optional[str]) -> Iterator[tuple[list[str], bool]]:
    """(lines, paused) chunks of the input: see :func:`_pipe_line_chunks`; a regular file is read
    in blocks of a few MB and never pauses."""
    from seq2seq.data.textio import iter_line_blocks

    if not is_stream(path):
        for block in iter_line_blocks(path):  # type: ignore[arg-type]
            yield block, False
        return
    if path and path != "-":
        try:
            stream = open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e} (check its permissions)") from None
        with stream:
            yield from _pipe_line_chunks(stream, path)
        return
    if sys.stdin is None:  # started with stdin closed
        raise Seq2SeqError("no input: stdin is closed; give --input FILE")
    yield from _pipe_line_chunks(sys.stdin.buffer, "<stdin>")


class InputWindows:
    """The input lines (stdin when ``path`` is None or "-"), as :func:`read_input_lines` gives
    them, in windows of at most ``size`` lines, read as they are needed: memory holds a window,
    not the input.

    Lines ``start`` to ``stop`` (0-based, ``stop`` excluded; None: to the end) are given; the
    lines before ``start`` are read and passed over. From a pipe or a terminal a window also
    ends where the input pauses (no more bytes ready), so lines that have arrived are translated
    at once, whatever comes later. ``lines_read`` counts the lines read so far, passed over ones
    included.
    """

    def __init__(self, path: Optional[str], size: int, start: int = 0, stop: Optional[int] = None) -> None:
        if size < 1:
            raise Seq2SeqError(f"--window must be at least 1, got {size}")
        self.size, self.start, self.stop = size, start, stop
        self._chunks: Callable[[], Iterator[tuple[list[str], bool]]] = lambda: _line_chunks(path)
        self.lines_read = 0

    @classmethod
    def from_stream(
        cls, stream: BinaryIO, name: str, size: int, start: int = 0, stop: Optional[int] = None
    ) -> InputWindows:
        """The same over an open binary stream (a pipe, a socket, ``io.BytesIO``); ``name`` is
        what errors call it."""
        windows = cls(None, size, start, stop)
        windows._chunks = lambda: _pipe_line_chunks(stream, name)
        return windows

    def __iter__(self) -> Iterator[list[str]]:
        window: list[str] = []
        start, stop = self.start, self.stop
        for lines, paused in self._chunks():
            first = self.lines_read
            self.lines_read += len(lines)
            lo = max(start - first, 0)
            hi = len(lines) if stop is None else min(len(lines), stop - first)
            if lo or hi < len(lines):
                lines = lines[lo:hi] if lo < hi else []
            taken = 0
            while taken < len(lines):
                more = lines[taken : taken + self.size - len(window)]
                window.extend(more)
                taken += len(more)
                if len(window) == self.size:
                    yield window
                    window = []
            if window and paused:
                yield window
                window = []
            if stop is not None and self.lines_read >= stop:
                break
        if window:
            yield window


def count_input_lines(path: str) -> int:
    """How many lines a file has, as :func:`read_input_lines` counts them (read in blocks; the
    errors reading it would give)."""
    from seq2seq.data.textio import iter_line_blocks

    return sum(len(block) for block in iter_line_blocks(path))
