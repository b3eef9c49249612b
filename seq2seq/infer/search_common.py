"""What greedy and beam search share: their settings (:class:`SearchSpec`), their output
(:class:`Hypothesis`), what they need of a model, and the rules of one decoding step: each
sentence's maximum length, forced prefix tokens, length-normalised scores and the constrained
log-probabilities of :func:`_step_log_probs`. The conventions these implement: the docstring of
:mod:`seq2seq.infer.search`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import torch
from torch import Tensor

from seq2seq.config import SearchConfig
from seq2seq.models.types import Decoder, Encoded, lengths_from_mask


class Seq2SeqLike(Protocol):
    """What the searches need from a model."""

    decoder: Decoder

    def encode(self, src: Tensor, src_mask: Tensor) -> Encoded: ...


@dataclass
class Hypothesis:
    """One finished output sequence."""

    tokens: list[int]  # output ids, without BOS and EOS
    score: float  # log_prob / (len(tokens) + 1) ** length_penalty: what ranks hypotheses
    log_prob: float  # sum of the token log-probabilities, EOS included


@dataclass(frozen=True)
class SearchSpec:
    """What a search decodes with, besides the model and the batch.

    The special ids come from the tokenizer and the rest usually from a config's ``search``
    section: :meth:`from_config`. Greedy search reads only the ids and the lengths.
    """

    bos_id: int  # fed as the first decoder input; never produced
    eos_id: int  # ends a hypothesis
    beam: int
    length_penalty: float  # score = log_prob / len ** length_penalty (len counts EOS)
    max_len_a: float  # maximum output length = int(max_len_a * src_len + max_len_b)
    max_len_b: int
    min_len: int = 0  # no EOS before this many output tokens
    nbest: int = 1  # hypotheses returned per sentence, 1 <= nbest <= beam
    max_output_len: Optional[int] = None  # a hard cap on every sentence's maximum length

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")
        if not 1 <= self.nbest <= self.beam:
            raise ValueError(f"nbest must be between 1 and the beam size ({self.beam}), got {self.nbest}")

    @classmethod
    def from_config(cls, search: SearchConfig, bos_id: int, eos_id: int, **changes: Any) -> SearchSpec:
        """``search``'s settings with these special ids; ``changes`` replace fields (``beam=1``,
        ``nbest=3``, ``max_output_len=255``, ...)."""
        values: dict[str, Any] = {
            "beam": search.beam,
            "length_penalty": search.length_penalty,
            "max_len_a": search.max_len_a,
            "max_len_b": search.max_len_b,
            "min_len": search.min_len,
        }
        return cls(bos_id=bos_id, eos_id=eos_id, **{**values, **changes})


def _max_lengths(src_mask: Tensor, spec: SearchSpec) -> Tensor:
    """(batch, src_len) bool -> (batch,) int64: each sentence's maximum output length."""
    lengths = lengths_from_mask(src_mask).tolist()
    cap = math.inf if spec.max_output_len is None else max(0, spec.max_output_len)
    max_lens = [int(max(0, min(cap, spec.max_len_a * n + spec.max_len_b))) for n in lengths]
    return torch.tensor(max_lens, dtype=torch.long, device=src_mask.device)


def _prefix_table(
    prefixes: Optional[Sequence[Sequence[int]]], max_len: Tensor, spec: SearchSpec
) -> tuple[Optional[Tensor], Tensor]:
    """Forced output ids as a (batch, longest prefix) table padded with -1 (None without prefixes),
    and the maximum lengths raised to the prefix lengths (prefixes cut to ``max_output_len``)."""
    if prefixes is None or not any(prefixes):
        return None, max_len
    if len(prefixes) != max_len.numel():
        raise ValueError(f"{len(prefixes)} prefixes for a batch of {max_len.numel()}")
    cap = len(max(prefixes, key=len)) if spec.max_output_len is None else max(0, spec.max_output_len)
    cut = [list(p)[:cap] for p in prefixes]
    if any(t in (spec.bos_id, spec.eos_id) or t <= 0 for p in cut for t in p):
        raise ValueError("a prefix cannot hold BOS, EOS, PAD (0) or negative ids")
    width = max(1, max(len(p) for p in cut))
    table = torch.tensor([p + [-1] * (width - len(p)) for p in cut], dtype=torch.long, device=max_len.device)
    lengths = torch.tensor([len(p) for p in cut], dtype=torch.long, device=max_len.device)
    return table, torch.maximum(max_len, lengths)


def _forced_tokens(table: Optional[Tensor], step: int, width: int = 1) -> Optional[Tensor]:
    """(rows,) the prefix token each row must take at ``step`` (-1: free), or None when no row
    is forced; ``width``: rows per sentence."""
    if table is None or step >= table.size(1):
        return None
    tokens = table[:, step]
    if not bool(tokens.ge(0).any()):
        return None
    return tokens.repeat_interleave(width) if width > 1 else tokens


def _normalise(log_prob: float, length: int, length_penalty: float) -> float:
    """Length-normalised score; ``length`` counts EOS, so it is at least 1."""
    return log_prob / (length**length_penalty) if length_penalty else log_prob


def _step_log_probs(
    decoder: Decoder,
    prev: Tensor,
    encoded: Encoded,
    state: dict[str, Any],
    step: int,
    forced: Tensor,
    spec: SearchSpec,
    pad_id: int = 0,
    prefix: Optional[Tensor] = None,
) -> tuple[Tensor, dict[str, Any]]:
    """One decoder step -> (float32 log-probabilities (rows, vocab) with constraints, state).

    BOS and PAD are never outputs. ``forced``: (rows,) bool, rows at their maximum length: only EOS
    is allowed there. Before ``spec.min_len`` tokens EOS is forbidden (except where forced).
    ``prefix``: (rows,) the token each row must take (-1: none), with its own log-probability.
    """
    logits, state = decoder.step(prev, encoded, state)  # (rows, vocab)
    # In place (the caller owns a step's logits, see Decoder.step): the largest tensor of a step
    # exists once, not twice: less peak memory for wide beams (docs/performance.md).
    logits = logits.float()  # (a copy only if the decoder ran in another precision)
    lprobs = torch.log_softmax(logits, dim=-1, out=logits)  # (rows, vocab)
    eos_id = spec.eos_id
    lprobs[:, spec.bos_id] = -math.inf
    if 0 <= pad_id < lprobs.size(1):
        lprobs[:, pad_id] = -math.inf
    eos_lp = lprobs[:, eos_id].clone()  # (rows,)
    if step < spec.min_len:
        lprobs[:, eos_id] = -math.inf
    if bool(forced.any()):
        lprobs.masked_fill_(forced.unsqueeze(1), -math.inf)
        lprobs[:, eos_id] = torch.where(forced, eos_lp, lprobs[:, eos_id])
    if prefix is not None:  # (a prefix is never longer than a row's maximum length: not `forced` here)
        rows = prefix.ge(0).unsqueeze(1)  # (rows, 1)
        token = prefix.clamp(min=0).unsqueeze(1)  # (rows, 1)
        kept = lprobs.gather(1, token)  # (rows, 1)
        lprobs.masked_fill_(rows, -math.inf)
        lprobs.scatter_(1, token, torch.where(rows, kept, lprobs.gather(1, token)))
    return lprobs, state
