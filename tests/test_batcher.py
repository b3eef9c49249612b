"""The serving batcher on its own: merging, and waiting for clients that were just answered."""

from __future__ import annotations

import asyncio
import time
from typing import Optional

from seq2seq.serve.batcher import Batcher


def closed_loop(
    clients: int, rounds: int, stagger: float, decode_s: float, max_wait: float, decoders: int = 1
) -> list[int]:
    """``clients`` that each send their next one-text request as soon as the last is answered
    (client i starts ``i * stagger`` s late); returns the size of every batch decoded."""
    return closed_loop_by_decoder(clients, rounds, stagger, [decode_s] * decoders, max_wait)[0]


def closed_loop_by_decoder(
    clients: int, rounds: int, stagger: float, decode_s: list[float], max_wait: float, spans: Optional[list] = None
) -> tuple[list[int], list[list[int]]]:
    """:func:`closed_loop` with one decoder per ``decode_s`` (its seconds per batch) -> (the size
    of every batch, in order; the sizes of each decoder's batches). ``spans``: gets (decoder,
    start, end) of every batch."""
    sizes: list[int] = []
    by_decoder: list[list[int]] = [[] for _ in decode_s]

    def runner(d: int):
        def run(key: object, items: list[int]) -> list[int]:
            sizes.append(len(items))
            by_decoder[d].append(len(items))
            start = time.monotonic()
            time.sleep(decode_s[d])
            if spans is not None:
                spans.append((d, start, time.monotonic()))
            return [item * 10 for item in items]

        return run

    async def main() -> None:
        batcher = Batcher([runner(d) for d in range(len(decode_s))], lambda key: 100, max_wait=max_wait)
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
    return sizes, by_decoder


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


def test_decoders_split_the_first_clients_and_each_keeps_its_own() -> None:
    # 8 clients at once, 2 decoders: the first batches take 4 each; each decoder then gets its
    # own 4 clients back and decodes them together, out of step with the other.
    _, by_decoder = closed_loop_by_decoder(clients=8, rounds=6, stagger=0.0, decode_s=[0.1, 0.1], max_wait=0.05)
    assert [sizes[0] for sizes in by_decoder] == [4, 4]
    assert sum(map(sum, by_decoder)) == 8 * 6
    assert all(sizes == [4] * 6 for sizes in by_decoder), by_decoder


def test_decoders_that_start_uneven_even_out() -> None:
    # The first clients arrive 30 ms apart, the first batches leave after 75 ms: one decoder starts
    # with 2 texts, the other with 1, and the 5 latecomers queue behind them. Kept by each decoder
    # as its own clients, that would stay 7 against 1 (or 6 against 2) for good; at 32 clients,
    # batches of 10-12 texts instead of 16 were seen (docs/performance.md). A decoder takes no more
    # than its even part of what waits and what the busy ones hold, so they even out to 4 and 4
    # (a client late under load can unsettle a round; it evens out again).
    _, by_decoder = closed_loop_by_decoder(clients=8, rounds=6, stagger=0.03, decode_s=[0.3, 0.3], max_wait=0.075)
    assert sum(map(sum, by_decoder)) == 8 * 6
    assert sorted(sizes[0] for sizes in by_decoder) == [1, 2], by_decoder  # an uneven start
    assert all(max(sizes[2:]) <= 5 and 4 in sizes[2:] for sizes in by_decoder), by_decoder


def test_a_slow_decoder_does_not_hold_the_others() -> None:
    # Decoder 0 takes 10 times longer a batch: decoder 1 answers its clients again and again
    # meanwhile, instead of waiting for decoder 0 to finish each time (in step, decoder 1 would
    # start one batch at most while decoder 0 decodes its first). Counted from the batches' own
    # times, not from how many each ran: which decoder takes a returning client is a race.
    spans: list = []
    _, by_decoder = closed_loop_by_decoder(
        clients=4, rounds=5, stagger=0.0, decode_s=[0.5, 0.05], max_wait=0.02, spans=spans
    )
    assert sum(map(sum, by_decoder)) == 4 * 5
    first_slow_end = min(end for d, _, end in spans if d == 0)
    assert sum(1 for d, start, _ in spans if d == 1 and start < first_slow_end) >= 3, spans


def test_retry_after_counts_every_decoder() -> None:
    one = Batcher(lambda key, items: items, lambda key: 10)
    two = Batcher([lambda key, items: items] * 2, lambda key: 10)
    for batcher in (one, two):
        batcher._queued_items, batcher._seconds_per_item = 100, 0.1
    assert (one._retry_after(), two._retry_after()) == (10, 5)
