"""Writing outputs: atomically (:func:`atomic_output`, :func:`atomic_path`, :func:`write_npy`:
a temporary name renamed when complete), window by window into a locked, resumable partial file
(:class:`WindowOutput`, ``--resume``), one line per output (:func:`clean_line`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Optional

from seq2seq.errors import Seq2SeqError


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
            self.written += lines
        else:
            self._file.write(text.encode("utf-8"))
            self._file.flush()
            # Counted once in the file, before the fsync: a Ctrl-C during the fsync (it can take a
            # while) leaves these lines in the partial file, and the note on leaving must say so.
            self.written += lines
            os.fsync(self._file.fileno())

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
            from seq2seq.checkpoint import fsync_directory  # (imports torch: not before it is needed)

            try:  # renamed before the lock goes with the file: no other process takes the name over
                if os.name == "nt":  # (where an open file cannot be renamed)
                    f.close()
                os.replace(self.partial, self.target)
                f.close()
                fsync_directory(self.target.parent)
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
