"""What every command shares: reading input lines (all at once, or in windows as they arrive),
writing outputs atomically (at once, or window by window into a resumable partial file), one line
per output, checkpoint errors in one sentence, and the flags that name inputs and outputs."""

from __future__ import annotations

import argparse
import os
import select
import stat
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Callable, Optional

from seq2seq import __version__
from seq2seq.config import Config, config_from_dict
from seq2seq.errors import CheckpointError, ConfigError, DataError, Seq2SeqError


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


@contextmanager
def checkpoint_errors(directory: str, action: str = "") -> Iterator[None]:
    """Turn the exceptions of a checkpoint whose files do not fit this version (hand-edited,
    or written by another one) into one CheckpointError naming the directory."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(
            f"cannot {action or 'load checkpoint ' + directory}: {type(e).__name__}"
            f"{': ' + reason if reason else ''}; its files do not fit this seq2seq ({__version__}): "
            "use the version that wrote it, or another checkpoint"
        ) from None


def saved_config(directory: str) -> Config:
    """The config a checkpoint was trained with, read and checked as a load would (the manifest,
    the format, every key), without building the model."""
    from seq2seq.checkpoint import CONFIG, resolve_checkpoint, verify_checkpoint

    with checkpoint_errors(directory):
        path = resolve_checkpoint(directory)
        meta = verify_checkpoint(path)
        if not isinstance(meta.get("config"), dict):
            raise CheckpointError(f"{path / CONFIG}: no 'config' object; not a checkpoint written by seq2seq train")
        try:
            return config_from_dict(meta["config"])
        except ConfigError as e:
            raise CheckpointError(f"{path / CONFIG}: incompatible config ({e})") from None


@contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[Path]:
    """A temporary path that is renamed to ``path`` only when the block completes."""
    target = Path(path)
    if target.is_dir():
        raise Seq2SeqError(f"--output {target} is a directory; give a file name")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text stream that becomes ``path`` only when the block completes (stdout when None)."""
    if not path or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


class WindowOutput:
    """Where a streaming command writes: a window of output lines at a time.

    To stdout (``path`` None or "-"): each window is written and flushed. To a file: into
    ``FILE.partial`` beside it, flushed and fsynced after each window, and renamed to FILE when
    the whole output is there, so FILE is never half-written and an existing FILE stays as it
    was until then. The partial file is locked while a process writes it.

    ``resumable``: a run that stops (Ctrl-C, a kill, a crash, an input error past the first
    window) leaves ``FILE.partial`` with every window it finished; with ``resume`` the next run
    checks it, cuts off a line written half, and goes on after :attr:`done` input lines. A
    partial file left by another run is refused without ``resume``. Not ``resumable``: a hidden
    temporary file, removed whatever stops the run (what ``evaluate`` writes).

    ``nbest`` > 1: output lines are ``INDEX<TAB>SCORE<TAB>TEXT``, several per input line, with
    INDEX from ``first_index``; a resume drops the last input line's group (it may be cut short)
    and translates that line again.

    :meth:`discard` (``--strict`` refusing a window) takes back what this run wrote: FILE is not
    touched and the partial file is as the run found it (gone if the run made it).
    """

    def __init__(
        self, path: Optional[str], resumable: bool = True, resume: bool = False, nbest: int = 1, first_index: int = 0
    ) -> None:
        self.to_stdout = not path or path == "-"
        self.target = None if self.to_stdout else Path(path)  # type: ignore[arg-type]
        self.resumable, self.resume, self.nbest, self.first_index = resumable, resume, nbest, first_index
        self.done = 0  # input lines already in the partial file (resume)
        self.written = 0  # input lines written by this run
        self._file: Optional[BinaryIO] = None
        self._kept_bytes = 0  # the partial file's size when this run took it over
        self._made = False  # this run created the partial file
        self._discard = False
        self.note = True  # a stopped run names the partial file and --resume in its error
        if self.target is not None:
            suffix = ".partial" if resumable else f".tmp-{os.getpid()}"
            prefix = "" if resumable else "."
            self.partial = self.target.with_name(f"{prefix}{self.target.name}{suffix}")

    # -------------------------------------------------------------- opening
    def __enter__(self) -> WindowOutput:
        if self.target is None:
            return self
        target = self.target
        if target.is_dir():
            raise Seq2SeqError(f"--output {target} is a directory; give a file name")
        try:
            self._made = not self.partial.exists()
            fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
        f = os.fdopen(fd, "r+b")
        try:
            self._lock(f)
            size = os.fstat(fd).st_size
            if size and not self.resumable:  # another run's temporary name (a reused pid): start afresh
                size = 0
            if size and not self.resume:
                raise Seq2SeqError(
                    f"{self.partial} holds the output of an unfinished run ({size:,} bytes): give --resume to go "
                    "on from where it stopped (same input and options), or delete it to start again"
                )
            self.done, keep = self._scan(f) if size else (0, 0)
            f.truncate(keep)
            f.seek(keep)
            self._kept_bytes = keep
        except BaseException:
            f.close()
            if self._made:
                self.partial.unlink(missing_ok=True)
            raise
        self._file = f
        return self

    @staticmethod
    def _lock(f: BinaryIO) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Seq2SeqError(
                f"{f.name} is being written by another running seq2seq: wait for it, or give another --output"
            ) from None
        except OSError:  # a file system without locks
            pass

    def _scan(self, f: BinaryIO) -> tuple[int, int]:
        """(input lines done, bytes to keep) of a partial file left by a stopped run."""
        f.seek(0)
        lines = complete = 0  # complete: bytes up to the last line end
        group_start = group_index = None  # n-best: where the last INDEX's lines begin, and INDEX
        offset = 0
        pending = b""
        while block := f.read(1 << 20):
            data = pending + block
            base = offset - len(pending)
            offset += len(block)
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if self.nbest == 1:
                lines += data.count(b"\n", 0, cut)
                if cut:
                    complete = base + cut
                continue
            position = 0
            while position < cut:
                end = data.index(b"\n", position) + 1
                index = self._nbest_index(data[position:end], lines + 1)
                if index != group_index:
                    expected = self.first_index if group_index is None else group_index + 1
                    if index != expected:
                        raise Seq2SeqError(
                            f"{self.partial}:{lines + 1}: INDEX {index} where {expected} should come: it was not "
                            "written by this command (input, --shard or --nbest differ); delete it to start again"
                        )
                    group_start, group_index = base + position, index
                lines += 1
                position = end
        if self.nbest == 1:
            return lines, complete
        if group_index is None:
            return 0, 0
        return group_index - self.first_index, group_start  # the last group is done again

    def _nbest_index(self, line: bytes, number: int) -> int:
        head = line.split(b"\t", 2)
        try:
            if len(head) < 3:
                raise ValueError
            return int(head[0])
        except ValueError:
            raise Seq2SeqError(
                f"{self.partial}:{number}: not an INDEX<TAB>SCORE<TAB>TEXT line: it was not written with "
                f"--nbest {self.nbest}; delete it to start again"
            ) from None

    # -------------------------------------------------------------- writing
    def write(self, text: str, lines: int) -> None:
        """Write one window's output (``lines``: how many input lines it answers) and make it
        durable: flushed (stdout), or flushed and fsynced (a file)."""
        if self._file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            self._file.write(text.encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())
        self.written += lines

    def discard(self) -> None:
        """On leaving, take back what this run wrote (see the class docstring)."""
        self._discard = True

    # -------------------------------------------------------------- closing
    def __exit__(self, kind: Optional[type], error: Optional[BaseException], trace: Optional[TracebackType]) -> None:
        if self._file is None:
            if self.to_stdout and error is None:
                sys.stdout.flush()
            return
        f, self._file = self._file, None
        assert self.target is not None
        if error is None:
            try:  # renamed before the lock goes with the file: no other process takes the name over
                if os.name == "nt":  # (where an open file cannot be renamed)
                    f.close()
                os.replace(self.partial, self.target)
                f.close()
                _sync_directory(self.target.parent)
            except OSError as e:
                f.close()
                raise Seq2SeqError(f"cannot write {self.target}: {e.strerror}") from None
            return
        try:
            if not self.resumable or self._discard:
                f.truncate(self._kept_bytes)
            size = f.seek(0, os.SEEK_END)
        except OSError:
            size = -1
        f.close()
        if size == 0 or not self.resumable:
            self.partial.unlink(missing_ok=True)  # nothing worth keeping
            return
        if size > 0 and not self._discard and self.note:
            done = self.done + self.written
            note = (
                f"{done:,} line(s) of output are in {self.partial}: run the same command with --resume to "
                "go on from there"
            )
            if isinstance(error, Seq2SeqError):
                error.args = (f"{error}; {note}",)
            elif isinstance(error, KeyboardInterrupt):
                print(f"seq2seq: {note}", file=sys.stderr)


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so that a rename in it survives a power cut (where the OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_npy(path: str, array: Any) -> None:
    """Save a .npy file atomically (temporary name, then rename)."""
    import numpy as np

    with atomic_path(path, ".npy") as tmp:
        np.save(tmp, array)


# Everything str.splitlines() breaks at: none may appear inside an output line.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def clean_line(text: str) -> str:
    """Outputs go one per line: never let a line break inside one (``\\n``, ``\\r``, or any
    other character ``str.splitlines`` splits at) break the alignment with the input."""
    return text.translate(_LINE_BREAKS)


def add_checkpoint_flag(p: argparse.ArgumentParser, help: str = "checkpoint directory (e.g. runs/NAME/best)") -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help=help)


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def add_io_flags(
    p: argparse.ArgumentParser,
    input_help: str = "input file (default: stdin)",
    output_help: str = "output file (default: stdout)",
) -> None:
    p.add_argument("--input", "-i", default=None, metavar="FILE", help=input_help)
    p.add_argument("--output", "-o", default=None, metavar="FILE", help=output_help)
