"""Which ``malloc`` training runs on: jemalloc when the machine has it.

glibc's allocator keeps the memory of freed tensors in one fragmented heap: fp32 training of the
benchmark Transformer peaked at 2.5 GB on it, and at 1.66 GB on jemalloc with page decay off, at
1.1-1.2x the tokens/s (fairseq, the lightest peer, peaks at 1.8 GB; docs/performance.md, "Training
memory"). The allocator must be chosen before the process starts, so ``seq2seq train`` run from
the command line re-executes itself once, with the same arguments, on jemalloc (``LD_PRELOAD``)
when the library is found; nothing changes where it is not (``apt-get install libjemalloc2`` on
Debian and Ubuntu). ``SEQ2SEQ_ALLOCATOR``: ``auto`` (the default), ``jemalloc`` (an error if it
cannot be found) or ``system``; ``SEQ2SEQ_JEMALLOC``: the library's path, if it is elsewhere.
A ``MALLOC_CONF`` already set is kept.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping
from typing import Optional

from seq2seq.errors import Seq2SeqError

__all__ = ["JEMALLOC_CONF", "allocator_env", "find_jemalloc", "reexec_on_jemalloc"]

# Never hand pages back to the system: returning them and faulting them in again on the next
# update cost 4-5x the system time and 0.74x the tokens/s with jemalloc's default decay.
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:-1,muzzy_decay_ms:-1"
CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)
_MARK = "SEQ2SEQ_ALLOCATOR_CHOSEN"  # set in the re-executed process: never twice


def find_jemalloc(env: Mapping[str, str]) -> Optional[str]:
    """The jemalloc library to preload: ``SEQ2SEQ_JEMALLOC``, a usual path, or the linker's."""
    given = env.get("SEQ2SEQ_JEMALLOC")
    if given:
        if not os.path.isfile(given):
            raise Seq2SeqError(f"SEQ2SEQ_JEMALLOC={given}: no such file (unset it, or point it at libjemalloc.so.2)")
        return given
    for path in CANDIDATES:
        if os.path.isfile(path):
            return path
    return ctypes.util.find_library("jemalloc")


def allocator_env(env: Mapping[str, str], platform: str = sys.platform) -> Optional[dict[str, str]]:
    """The environment to re-execute with on jemalloc, or None to go on as this process is."""
    choice = env.get("SEQ2SEQ_ALLOCATOR", "auto").strip().lower() or "auto"
    if choice not in ("auto", "jemalloc", "system"):
        raise Seq2SeqError(f"SEQ2SEQ_ALLOCATOR={choice}: use auto, jemalloc or system")
    preloaded = env.get("LD_PRELOAD", "")
    if choice == "system" or env.get(_MARK) or "jemalloc" in preloaded:
        return None
    if not platform.startswith("linux"):
        if choice == "jemalloc":
            raise Seq2SeqError(f"SEQ2SEQ_ALLOCATOR=jemalloc is for Linux only (this is {platform})")
        return None
    library = find_jemalloc(env)
    if library is None:
        if choice == "jemalloc":
            raise Seq2SeqError(
                "SEQ2SEQ_ALLOCATOR=jemalloc, but no libjemalloc was found: install it (Debian/Ubuntu: "
                "apt-get install libjemalloc2) or set SEQ2SEQ_JEMALLOC=/path/to/libjemalloc.so.2"
            )
        return None
    new = dict(env)
    new["LD_PRELOAD"] = f"{library}:{preloaded}" if preloaded else library
    new.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    new[_MARK] = library
    return new


def reexec_on_jemalloc() -> None:
    """Replace this process by the same command on jemalloc, if :func:`allocator_env` says so
    (the process id, arguments and the rest of the environment stay; only for a command line,
    never for ``main()`` called from Python)."""
    new = allocator_env(os.environ)
    if new is None:
        return
    command = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *command[1:]], new)


def current_allocator() -> str:
    """What this process runs on, for the training log."""
    chosen = os.environ.get(_MARK)
    if chosen or "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return f"jemalloc ({chosen or os.environ['LD_PRELOAD']}; MALLOC_CONF={os.environ.get('MALLOC_CONF', '')})"
    return "the system's malloc (install libjemalloc2 for less memory: docs/performance.md)"
