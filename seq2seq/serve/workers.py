"""Decoding in several processes: ``seq2seq serve --workers N``.

On a CPU, one decoding call on a batch of 16-32 sentences does not keep several cores busy: its
operations are too small for PyTorch's threads to share well, and a server's event loop competes
with them. N processes of one thread each, every one decoding batches of its own, do keep N
cores busy (measured on 2 cores, beam 5: one process with 2 threads decoded 85 sentences/s in
batches of 32; two 1-thread processes, 133 together in batches of 16). Threads in one process
would not do: the Python between the operations holds the interpreter lock (93/s).

:class:`WorkerPool` starts N processes that each load the checkpoint (so memory holds N + 1
copies of the model: the server keeps one for ``/info`` and the per-text notes). Its
:meth:`WorkerPool.runners` are N callables with the signature of :meth:`Service.run`, one per
worker; the batcher gives each a thread of its own, so a worker takes its next batch as soon as
it has answered the last and never waits for another. (Until 2026-12-01 every batch was cut into
N length-sorted shares decoded side by side, so each batch took as long as its slowest share: at
32 clients with outputs of natural length, 0.51-0.56x offline against 0.61-0.70x now, four rounds
each, docs/performance.md.) A text's result does not depend on its batch (``--quantize int8``'s
does: docs/serving.md), so not on the worker that decodes it either. Each worker keeps to cores of
its own when the workers use exactly the cores this process may use (:func:`worker_cpus`;
``seq2seq serve --no-pin-workers`` lets them move).

A worker that dies (killed, out of memory) is started again, and the batch it was decoding fails
with an error that says so; the batcher then retries that batch's requests one at a time. Workers
ignore SIGINT and SIGTERM (the server stops them once the queue is drained) and exit when the
server's end of their pipe closes, so a server killed outright leaves none behind.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Hashable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Optional

from seq2seq.config import SearchConfig
from seq2seq.cpus import usable_cpus
from seq2seq.errors import Seq2SeqError

log = logging.getLogger("seq2seq.serve")

__all__ = ["WorkerPool", "WorkerSpec", "default_threads", "worker_cpus"]


@dataclass(frozen=True)
class WorkerSpec:
    """What each worker loads: the arguments of :meth:`Service.from_checkpoint`, and its threads."""

    checkpoint: str
    device: str = "cpu"
    search: Optional[SearchConfig] = None
    quantize: Optional[str] = None
    precision: str = "fp32"
    threads: int = 1


def _send_error(conn: Connection, e: BaseException) -> None:
    """The worker's side of a failure: ("error", type name, message, traceback)."""
    conn.send(("error", type(e).__name__, str(e), traceback.format_exc()))


def _error_text(answer: tuple, index: int) -> tuple[str, str]:
    """The server's side: (type name, message) of a worker's "error" answer; its traceback is logged."""
    _, kind, text, trace = answer
    log.debug("decoding worker %d:\n%s", index, trace)
    return kind, text


def _serve_one(spec: WorkerSpec, conn: Connection, cpus: Optional[frozenset[int]] = None) -> None:
    """A worker's life: keep to ``cpus`` (if given), load the checkpoint, say ready (or why not),
    then answer batches until the pipe closes or a None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the server drains its queue, then stops us
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as e:  # (a core taken away since): decode unpinned rather than not at all
            log.warning("decoding worker could not keep to cores %s: %s", sorted(cpus), e)
    try:
        import torch

        torch.set_num_threads(spec.threads)
        from seq2seq.serve.service import Service

        service = Service.from_checkpoint(
            spec.checkpoint, device=spec.device, search=spec.search, quantize=spec.quantize, precision=spec.precision
        )
    except BaseException as e:  # noqa: BLE001 - reported to the server, which stops with it
        _send_error(conn, e)
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if message is None:
            return
        key, items = message
        try:
            conn.send(("ok", service.run(key, items)))
        except Exception as e:  # noqa: BLE001 - every batch gets an answer
            _send_error(conn, e)


class _Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self, index: int, spec: WorkerSpec, context: Any, cpus: Optional[frozenset[int]] = None) -> None:
        self.index = index
        self.cpus = cpus
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve_one, args=(spec, child, cpus), name=f"seq2seq-decoder-{index}", daemon=True
        )
        self.process.start()
        child.close()

    def wait_ready(self) -> None:
        try:
            message = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise Seq2SeqError(
                f"decoding worker {self.index} stopped while loading (exit code {self.process.exitcode})"
            ) from None
        if message[0] != "ready":
            kind, text = _error_text(message, self.index)
            raise Seq2SeqError(f"decoding worker {self.index} could not load the checkpoint: {kind}: {text}")

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.conn.close()


class WorkerPool:
    """``workers`` decoding processes (see the module docstring), each run by one thread at a
    time through :meth:`runners`. ``pin``: keep each worker to cores of its own
    (:func:`worker_cpus`), when they use exactly the cores this process may use."""

    def __init__(self, spec: WorkerSpec, workers: int, pin: bool = True) -> None:
        if workers < 1:
            raise Seq2SeqError(f"--workers must be at least 1, got {workers}")
        self.spec = spec
        self.size = workers
        self.cpus = worker_cpus(workers, spec.threads) if pin else [None] * workers
        self._context = multiprocessing.get_context("spawn")  # fork after torch's threads start is unsafe
        self._workers: list[_Worker] = []
        self._locks = [threading.Lock() for _ in range(workers)]  # one batch at a time per worker

    def start(self) -> None:
        """Start every worker and wait until each has loaded the checkpoint (raises Seq2SeqError
        with the first worker's reason if one cannot)."""
        self._workers = [_Worker(i, self.spec, self._context, self.cpus[i]) for i in range(self.size)]
        try:
            for worker in self._workers:
                worker.wait_ready()
        except BaseException:
            self.close()
            raise
        log.info("%d decoding workers, %d thread(s) each (pids %s)", self.size, self.spec.threads, self.pids)

    @property
    def pinned(self) -> bool:
        """Whether each worker keeps to cores of its own."""
        return all(c is not None for c in self.cpus)

    @property
    def pids(self) -> list[Optional[int]]:
        return [w.process.pid for w in self._workers]

    def close(self) -> None:
        """Stop the workers (each finishes the batch it has first)."""
        for lock in self._locks:
            lock.acquire()
        try:
            for worker in self._workers:
                worker.stop()
            self._workers = []
        finally:
            for lock in self._locks:
                lock.release()

    def runners(self) -> list[Callable[[Hashable, list[Any]], list[Any]]]:
        """One ``run(key, items)`` per worker, with :meth:`Service.run`'s signature: the batcher
        gives each its own thread, so every worker decodes its own batches."""
        return [functools.partial(self.run_on, i) for i in range(self.size)]

    def run_on(self, index: int, key: Hashable, items: list[Any]) -> list[Any]:
        """One result per item, as ``Service.run(key, items)`` gives them, decoded by worker
        ``index``; called by one thread at a time per worker."""
        with self._locks[index]:
            if not self._workers:
                raise RuntimeError("the decoding workers are stopped")
            worker = self._workers[index]
            try:
                worker.conn.send((key, items))
                answer = worker.conn.recv()
            except (EOFError, OSError, ValueError):
                raise self._restart(worker) from None
        if answer[0] != "ok":
            kind, text = _error_text(answer, index)
            raise Seq2SeqError(text) if kind == "Seq2SeqError" else RuntimeError(f"{kind}: {text}")
        return answer[1]

    def _restart(self, worker: _Worker) -> RuntimeError:
        """Replace a worker that died (its lock is held); the error its batch fails with."""
        worker.process.join(5)
        code = worker.process.exitcode
        log.error("decoding worker %d stopped (exit code %s); starting it again", worker.index, code)
        worker.conn.close()
        replacement = _Worker(worker.index, self.spec, self._context, worker.cpus)
        self._workers[worker.index] = replacement
        try:
            replacement.wait_ready()
        except Seq2SeqError as e:
            log.error("%s", e)
        return RuntimeError(f"decoding worker {worker.index} stopped (exit code {code}) and was started again")


def worker_cpus(workers: int, threads: int) -> list[Optional[frozenset[int]]]:
    """The cores each worker keeps to: disjoint sets of ``threads`` cores from this process's
    affinity mask, in order, when the workers use exactly the cores of the mask; otherwise (or off
    Linux) None for every worker, and the scheduler shares the cores out.

    Exactly, because pinning to a part of the mask would put every server started alike on the
    same first cores; a user who runs several servers gives each its own cores (``taskset``), and
    each then pins inside its own. A worker that stays on its cores keeps its caches: decoding's
    int8 calls cost several times their kernels when other work has evicted those
    (docs/performance.md, "Workers kept to their own cores").
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return [None] * workers
    if workers * threads != len(cpus):
        return [None] * workers
    return [frozenset(cpus[i * threads : (i + 1) * threads]) for i in range(workers)]


def default_threads(workers: int) -> int:
    """Threads per worker when --threads is not given: the cores this process may use, shared."""
    return max(1, usable_cpus() // max(1, workers))
