"""Batching across requests: a queue that the HTTP handlers fill and one thread per decoder drains.

A request becomes one :class:`Job` (its texts, and a key: the operation and the settings it
decodes with). A decoder thread (one per decoding worker: ``seq2seq serve --workers N`` has N,
each with its own process) takes the oldest job, waits up to ``max_wait`` seconds for more jobs
with the same key, and runs them as one call of its ``run``; each job then gets exactly its own
slice of the results, in order. Each decoder takes its next batch as soon as it has answered its
last, out of step with the others: none waits for a slower one to finish.

How long to wait: most clients send their next request when they have the answer to the last.
So when a decoder has answered a batch, it expects those texts back and waits (up to
``max_wait`` from that moment) until the queue holds what was already waiting plus what it just
answered, or ``cap(key)`` texts, and then takes at least that many. Without this, 32 such
clients settle into groups that take turns (one group's requests arrive while the other's
decode), and every batch is smaller than it could be. What was already waiting counts first
toward the idle decoders that answered it (their clients came back before they took them). And
while other decoders are busy, a decoder waits for and takes no more than its even part of what
it expects and what the busy ones hold: decoders that started uneven (clients that arrived while
the first batches left) even out within a round, instead of keeping 7 and 1 of 8 clients for
good (as they could before 2026-12-01: docs/performance.md). A decoder's very first batch waits
for ``cap(key)`` texts or ``max_wait``, and takes its even part of what is waiting (the other
idle decoders take the rest), so N decoders that start together split the first clients N ways.
Jobs with another key wait for a later batch, in arrival order. A merged batch that fails is run
again one job at a time, so an error reaches only the request that caused it.

The models run on the decoder threads (or behind them, in the worker processes), so the event
loop stays free to accept requests, answer ``/health`` and turn requests away while batches
decode. The queue is bounded (in texts): :meth:`Batcher.submit` raises :class:`QueueFull` at
once rather than letting waits grow without limit, and :class:`TimedOut` when the answer takes
longer than the request's timeout (a job still queued then is withdrawn; one already decoding is
finished and its result dropped).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from seq2seq.errors import Seq2SeqError

log = logging.getLogger("seq2seq.serve")

__all__ = ["Batcher", "Closed", "QueueFull", "TimedOut"]


class QueueFull(Exception):
    """The queue holds as many texts as it may: come back in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class TimedOut(Exception):
    """No answer within the request's timeout."""


class Closed(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass(eq=False)
class Job:
    """One request's texts (``items``), the key they decode with, and where its answer goes."""

    key: Hashable
    items: list[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    arrived: float = field(default_factory=time.monotonic)


def _deliver(future: asyncio.Future, result: Any = None, error: Optional[BaseException] = None) -> None:
    """Resolve ``future`` on its loop's thread, unless it is already done (cancelled, timed out)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


@dataclass(eq=False)
class _Decoder:
    """One decoder thread's state: what it runs batches with, and what it last did."""

    run: Callable[[Hashable, list[Any]], list[Any]]
    thread: Optional[threading.Thread] = None
    in_flight: int = 0  # jobs in the batch it is running (0: idle)
    in_flight_texts: int = 0  # texts in that batch
    last_texts: int = 0  # texts in the last batch it answered
    batches: int = 0  # batches it has run
    free_at: float = 0.0  # when it last finished answering a batch
    expect: int = 0  # texts queued then (less idle decoders' returning ones), plus those it answered


class Batcher:
    """A bounded queue of jobs decoded in batches by one thread per decoder (see the module docstring).

    ``run(key, items)`` returns one result per item, in order; a list of such callables gives
    one decoder thread each (``seq2seq serve --workers N``: one per worker process). ``cap(key)``:
    the most texts merged into one call for that key (a single larger job still runs, alone);
    ``max_wait``: seconds a decoder waits after a job arrives for others to join it (0: merge only
    what is already queued); ``max_queue``: texts that may wait at once.
    """

    def __init__(
        self,
        run: Union[Callable[[Hashable, list[Any]], list[Any]], Sequence[Callable[[Hashable, list[Any]], list[Any]]]],
        cap: Callable[[Hashable], int],
        max_wait: float = 0.02,
        max_queue: int = 1024,
    ) -> None:
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        runs = [run] if callable(run) else list(run)
        if not runs:
            raise ValueError("a batcher needs at least one run callable")
        self._decoders = [_Decoder(r) for r in runs]
        self.cap = cap
        self.max_wait = max_wait
        self.max_queue = max_queue
        self._queue: deque[Job] = deque()
        self._queued_items = 0
        self._cond = threading.Condition()
        self._closing = False
        self._paused = False
        self._seconds_per_item = 0.01  # running estimate for one decoder, for Retry-After
        self.batches = 0  # batches run
        self.requests = 0  # jobs answered by the decoders
        self.items = 0  # texts decoded
        self.largest_batch = 0  # most jobs merged into one batch

    @property
    def in_flight(self) -> int:
        """Jobs in the batches being run now."""
        return sum(d.in_flight for d in self._decoders)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Start the decoder threads (once)."""
        for i, decoder in enumerate(self._decoders):
            if decoder.thread is None:
                decoder.thread = threading.Thread(
                    target=self._work, args=(decoder,), name=f"seq2seq-batcher-{i}", daemon=True
                )
                decoder.thread.start()

    def close(self, timeout: Optional[float] = None) -> None:
        """Take no new jobs, finish the queued ones, and stop the decoder threads."""
        with self._cond:
            self._closing = True
            self._paused = False
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for decoder in self._decoders:
            if decoder.thread is not None:
                decoder.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    @property
    def closing(self) -> bool:
        return self._closing

    def pause(self) -> None:
        """Hold the decoders before their next batch (jobs keep queueing): for a drain or a test."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Let the decoders go on after :meth:`pause`."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        """Queue and throughput counters, for ``/health``."""
        with self._cond:
            return {
                "queued_requests": len(self._queue),
                "queued_texts": self._queued_items,
                "in_flight_requests": self.in_flight,
                "batches": self.batches,
                "requests": self.requests,
                "texts": self.items,
                "largest_batch_requests": self.largest_batch,
            }

    # ------------------------------------------------------------------ the handlers' side
    async def submit(self, key: Hashable, items: list[Any], timeout: float) -> list[Any]:
        """Queue ``items`` and wait for their results (one per item, in order).

        Raises QueueFull at once when they do not fit in the queue, Closed while shutting down,
        TimedOut after ``timeout`` seconds, and whatever ``run`` raised for this job.
        """
        loop = asyncio.get_running_loop()
        job = Job(key, list(items), loop.create_future(), loop)
        with self._cond:
            if self._closing:
                raise Closed("the server is shutting down")
            if self._queue and self._queued_items + len(job.items) > self.max_queue:
                raise QueueFull(self._retry_after())
            self._queue.append(job)
            self._queued_items += len(job.items)
            self._cond.notify_all()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except asyncio.TimeoutError:
            self._withdraw(job)
            raise TimedOut(f"no answer within {timeout:g} s") from None
        except asyncio.CancelledError:
            self._withdraw(job)
            raise

    def _withdraw(self, job: Job) -> None:
        """Take a job out of the queue if it is still there (its handler has given up on it)."""
        with self._cond:
            try:
                self._queue.remove(job)
            except ValueError:
                return  # already taken by a decoder: its result will be dropped
            self._queued_items -= len(job.items)

    def _retry_after(self) -> int:
        """Seconds until the queue has likely drained (at least 1), from the recent rate."""
        seconds = self._queued_items * self._seconds_per_item / len(self._decoders)
        return int(min(60, max(1, math.ceil(seconds))))

    # ------------------------------------------------------------------ the decoders' side
    def _take(self, me: _Decoder) -> Optional[list[Job]]:
        """Wait for work and return ``me``'s next batch of jobs (None: closed and drained)."""
        with self._cond:
            while not self._closing and (self._paused or not self._queue):
                self._cond.wait()
            if not self._queue:
                return None
            first = self._queue[0]
            cap = max(1, self.cap(first.key))
            until = max(first.arrived, me.free_at) + self.max_wait
            # what was waiting plus the texts this decoder just answered (see the module docstring)
            target = min(cap, max(1, self._even_part(me, me.expect) if me.batches else cap))
            while not self._closing and not self._paused:
                left = until - time.monotonic()
                if self._waiting(first.key) >= target or left <= 0:
                    break
                self._cond.wait(left)
            while self._paused and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None if self._closing else []
            first = self._queue[0]  # (the first job may have been withdrawn, or taken by another decoder)
            cap = max(1, self.cap(first.key))
            # This decoder's part: what it expects back, or its even part of what waits when the
            # other idle decoders are about to take theirs (a decoder's first batch).
            idle = sum(1 for d in self._decoders if not d.in_flight)
            share = -(-self._waiting(first.key) // idle)
            limit = min(cap, max(1, self._even_part(me, max(share, me.expect if me.batches else 0))))
            taken, count = [], 0
            for job in list(self._queue):
                if job.key != first.key:
                    continue
                if taken and count + len(job.items) > limit:
                    break
                taken.append(job)
                count += len(job.items)
            for job in taken:
                self._queue.remove(job)
            self._queued_items -= count
            me.in_flight = len(taken)  # (at least the first job)
            me.in_flight_texts = count
            return taken

    def _even_part(self, me: _Decoder, texts: int) -> int:
        """At most ``texts``, and no more than ``me``'s even part of them and of the texts the busy
        decoders are decoding (when any is busy): decoders that started uneven even out (the
        caller holds the lock)."""
        busy = [d.in_flight_texts for d in self._decoders if d is not me and d.in_flight]
        if not busy:
            return texts
        return min(texts, -(-(texts + sum(busy)) // (len(busy) + 1)))

    def _waiting(self, key: Hashable) -> int:
        """Texts queued with ``key`` (the caller holds the lock)."""
        return sum(len(j.items) for j in self._queue if j.key == key)

    def _work(self, me: _Decoder) -> None:
        while True:
            jobs = self._take(me)
            if jobs is None:
                return
            if not jobs:
                continue
            started = time.monotonic()
            answers = self._run(me, jobs)
            elapsed = time.monotonic() - started
            texts = sum(len(j.items) for j in jobs)
            with self._cond:  # (counted before the answers go out: a client that has its answer sees it counted)
                self.batches += 1
                me.batches += 1
                self.requests += len(jobs)
                self.items += texts
                self.largest_batch = max(self.largest_batch, len(jobs))
                me.in_flight = me.in_flight_texts = 0
                me.last_texts = texts
                if texts:
                    self._seconds_per_item = 0.8 * self._seconds_per_item + 0.2 * elapsed / texts
                # (counted before any answered client can send again) What waits is first the
                # returning clients of the idle decoders that answered them, then this one's.
                theirs = sum(d.last_texts for d in self._decoders if d is not me and not d.in_flight)
                me.expect = max(0, self._queued_items - theirs) + texts
                self._cond.notify_all()  # (idle decoders count this one among them again)
            for job, result, error in answers:
                self._send(job, result, error)
            with self._cond:
                me.free_at = time.monotonic()

    def _run(self, me: _Decoder, jobs: list[Job]) -> list[tuple[Job, Any, Optional[BaseException]]]:
        """Run the jobs as one call -> (job, its slice of the results, None) each; on an error,
        one job at a time -> (job, None, the error) for those that fail."""
        items = [item for job in jobs for item in job.items]
        try:
            results = me.run(jobs[0].key, items) if items else []
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} inputs")
        except Exception as e:  # noqa: BLE001 - every job must get an answer
            if len(jobs) > 1:
                return [answer for job in jobs for answer in self._run(me, [job])]
            if not isinstance(e, Seq2SeqError):
                log.exception("a batch failed")
            return [(jobs[0], None, e)]
        answers, start = [], 0
        for job in jobs:
            answers.append((job, results[start : start + len(job.items)], None))
            start += len(job.items)
        return answers

    @staticmethod
    def _send(job: Job, result: Any = None, error: Optional[BaseException] = None) -> None:
        try:
            job.loop.call_soon_threadsafe(_deliver, job.future, result, error)
        except RuntimeError:  # the loop is closed: nobody waits for this answer any more
            pass
