"""Source token ids made ready for decoding: cut to the model's limit (with one warning that
counts the cut lines) and packed into length-sorted token-budget batches; the messages of the
cut sources and capped outputs that :class:`~seq2seq.infer.translator.Translator` warns with."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from seq2seq.data.samplers import TokenBudgetBatchSampler
from seq2seq.data.tokenizer import SpmTokenizer


def encode_sources(tokenizer: SpmTokenizer, lines: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each line, cut to ``max_tokens`` (with one warning counting the cut lines)."""
    return truncate_sources(tokenizer.encode_batch(lines), max_tokens)


def truncate_sources(ids: list[list[int]], max_tokens: int) -> list[list[int]]:
    """``ids`` with every sequence cut to ``max_tokens`` (one warning counting the cut lines)."""
    truncated = _cut_sources(ids, max_tokens)
    if truncated:
        warnings.warn(_truncated_message(truncated, max_tokens), stacklevel=3)
    return ids


def _cut_sources(ids: list[list[int]], max_tokens: int) -> int:
    """Cut every sequence of ``ids`` to ``max_tokens`` in place; returns how many were cut."""
    truncated = 0
    for i, seq in enumerate(ids):
        if len(seq) > max_tokens:
            ids[i] = seq[:max_tokens]
            truncated += 1
    return truncated


def _truncated_message(count: int, max_tokens: int) -> str:
    return f"{count} input line(s) longer than {max_tokens} subword tokens were truncated to the model's limit"


def _capped_message(count: int, max_output_tokens: int) -> str:
    return (
        f"{count} output(s) stopped at the model's maximum output length "
        f"({max_output_tokens} tokens: model.max_positions - 1)"
    )


def length_batches(ids: list[list[int]], batch_tokens: int, max_sentences: int = 0) -> Iterator[list[int]]:
    """Positions of the non-empty sequences, sorted by length and packed by token budget (and at
    most ``max_sentences`` per batch, if > 0)."""
    nonempty = [i for i, seq in enumerate(ids) if seq]
    lengths = [len(ids[i]) for i in nonempty]
    sampler = TokenBudgetBatchSampler(
        lengths, lengths, max_tokens=batch_tokens, max_sentences=max_sentences, shuffle=False
    )
    for batch in sampler.batches(0):
        yield [nonempty[j] for j in batch]
