"""The serving batcher on its own: merging, and waiting for clients that were just answered."""

from __future__ import annotations

import asyncio
import time

from seq2seq.serve.batcher import Batcher


def closed_loop(clients: int, rounds: int, stagger: float, decode_s: float, max_wait: float) -> list[int]:
    """``clients`` that each send their next one-text request as soon as the last is answered
    (client i starts ``i * stagger`` s late); returns the size of every batch decoded."""
    sizes: list[int] = []

    def run(key: object, items: list[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(decode_s)
        return [item * 10 for item in items]

    async def main() -> None:
        batcher = Batcher(run, lambda key: 100, max_wait=max_wait)
        batcher.start()

        async def client(i: int) -> None:
            await asyncio.sleep(i * stagger)
            for r in range(rounds):
                assert await batcher.submit("translate", [i * 100 + r], 30) == [(i * 100 + r) * 10]

        try:
            await asyncio.gather(*(client(i) for i in range(clients)))
        finally:
            batcher.close(10)

    asyncio.run(main())
    return sizes


def test_clients_answered_together_are_waited_for_together() -> None:
    # The first batch leaves with client 0 alone (the others start later than the wait). Once
    # the queue's clients and the returning ones are one batch, they stay together: without
    # waiting for the returners, the clients would take turns in two groups forever.
    sizes = closed_loop(clients=8, rounds=6, stagger=0.06, decode_s=0.25, max_wait=0.05)
    assert sizes[0] < 8
    assert sum(sizes) == 8 * 6
    assert sizes.count(8) >= 3, sizes  # (client 0 is a round ahead: the last batches may be short)


def test_a_lone_client_is_not_kept_waiting() -> None:
    # One client: the batch it expects back is its own request, so nothing waits for max_wait.
    started = time.monotonic()
    sizes = closed_loop(clients=1, rounds=5, stagger=0.0, decode_s=0.0, max_wait=0.5)
    assert sizes == [1] * 5
    # the first batch waits max_wait for company (cap texts or the wait), the others do not
    assert time.monotonic() - started < 0.5 + 4 * 0.25
