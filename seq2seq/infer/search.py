"""Greedy and beam search over the incremental :class:`~seq2seq.models.types.Decoder` API.

Both searches are batched and incremental: the source is encoded once, and each output
position costs one ``decoder.step`` over the rows still being decoded. Their settings come in
one frozen :class:`SearchSpec` (special ids, beam, lengths), usually made from a config's
``search`` section with :meth:`SearchSpec.from_config`.

Conventions shared by both:

* A sentence's maximum output length is ``int(max_len_a * src_len + max_len_b)`` tokens (EOS not
  counted), where ``src_len`` is *its own* number of real source tokens (from ``src_mask``),
  and never more than ``max_output_len`` when that is given (a decoder with a position table
  cannot go past it, and a hard cap keeps a huge ``max_len_a`` from decoding for ever).
  At that length EOS is forced: the hypothesis ends there and its log-probability includes the
  forced EOS, so truncated and naturally finished hypotheses are scored alike.
* ``min_len`` forbids EOS while fewer than ``min_len`` tokens have been produced (the maximum
  length wins if ``min_len`` exceeds it).
* Sentences that finish are removed from the batch (the decoder state and ``encoded`` are
  re-selected), so a long sentence does not make the finished short ones cost compute.
* With a ``grouped_rows`` decoder, the beams of a sentence share one copy of its source memory
  (``encoded`` and the state's static part keep one row per sentence).
* Batch independence: every decision (lengths, top-k, finishing, tie-breaking) is taken per
  sentence, so a sentence's output does not depend on the other sentences in its batch (up to
  float rounding in the model itself). Exact ties are broken towards the lower beam row, then
  the lower token id (``argmax``'s first-index rule in greedy search).
* BOS and PAD (id 0) are never produced (their probability is set to 0); scores are the model's own
  log-probabilities of the chosen tokens (the softmax is taken before any masking).
* Prefixes: with ``prefixes`` (output ids per sentence), a sentence's first tokens are forced:
  at a prefix position only the prefix token can be chosen, with the model's own log-probability
  (so scores are those of the whole output), and the search goes on from the end of the prefix.
  A sentence's maximum length is at least its prefix's length (a prefix longer than
  ``max_output_len`` is cut to it). Beam search then keeps one live hypothesis per sentence
  through the prefix (its other rows score -inf) and widens after it.
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

__all__ = ["Hypothesis", "SearchSpec", "beam_search", "generate", "greedy_search"]


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


_CHUNK = 64  # vocabulary entries per chunk in the two-stage top-k of beam search


def _top_candidates(lprobs: Tensor, scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k best continuations of each sentence: lprobs (n*beam, V), scores (n, beam) running
    log-probs -> (scores + log-probs (n, k), flat indices row_in_sentence * V + token (n, k)).
    ``lprobs`` may be overwritten.

    Two stages where the vocabulary splits into 64-entry chunks: the k best chunks by their
    maximum (with the row's score), then the k best entries of those chunks. Every one of the
    k best entries lies in one of the k best chunks, so this is a top-k of the whole
    (n, beam * V), from one pass of chunk maxima and a small top-k, instead of adding the
    scores to and running top-k over all of it, which is slower on a CPU (measured:
    docs/performance.md, "Figures behind code defaults").
    """
    n, beam = scores.shape
    vocab = lprobs.size(1)
    per_row = vocab // _CHUNK  # chunks per row
    if vocab % _CHUNK or beam * per_row < k:
        return lprobs.add_(scores.view(-1, 1)).view(n, beam * vocab).topk(k, dim=1)
    chunks = lprobs.view(n, beam * per_row, _CHUNK)  # (n, beam*per_row, chunk), in flat order
    chunk_best = chunks.amax(dim=2).view(n, beam, per_row) + scores.unsqueeze(2)  # (n, beam, per_row)
    top_chunks = chunk_best.view(n, -1).topk(k, dim=1)[1]  # (n, k) chunk numbers
    picked = chunks.gather(1, top_chunks.unsqueeze(2).expand(n, k, _CHUNK))  # (n, k, chunk)
    picked = picked + scores.gather(1, top_chunks // per_row).unsqueeze(2)  # + each chunk's row score
    values, pos = picked.view(n, k * _CHUNK).topk(k, dim=1)  # (n, k)
    flat = top_chunks.gather(1, pos // _CHUNK) * _CHUNK + pos % _CHUNK  # (n, k)
    return values, flat


def _greedy(
    model: Seq2SeqLike,
    src: Tensor,
    src_mask: Tensor,
    spec: SearchSpec,
    prefixes: Optional[Sequence[Sequence[int]]] = None,
) -> tuple[list[list[int]], list[float]]:
    """Greedy decoding -> (tokens per sentence (no BOS/EOS), summed log-probability per sentence)."""
    decoder = model.decoder
    batch = src.size(0)
    device = src.device
    encoded = model.encode(src, src_mask)
    state = decoder.init_state(encoded)
    prefix, max_len = _prefix_table(prefixes, _max_lengths(src_mask, spec), spec)  # (n, P), (n,)
    active = torch.arange(batch, device=device)  # (n,) original position of each active sentence
    prev = torch.full((batch,), spec.bos_id, dtype=torch.long, device=device)  # (n,)
    tokens = torch.empty((batch, 0), dtype=torch.long, device=device)  # (n, step)
    total = torch.zeros(batch, dtype=torch.float32, device=device)  # (n,) running log-prob
    out_tokens: list[list[int]] = [[] for _ in range(batch)]
    out_log_probs: list[float] = [0.0] * batch

    step = 0
    while active.numel() > 0:
        forced = max_len.eq(step)  # (n,)
        lprobs, state = _step_log_probs(
            decoder, prev, encoded, state, step, forced, spec, prefix=_forced_tokens(prefix, step)
        )
        # Same arithmetic as beam search's candidate scores, so beam 1 picks the same tokens.
        total, prev = (total.unsqueeze(1) + lprobs).max(dim=1)  # (n,), (n,)
        done = prev.eq(spec.eos_id) | forced  # (n,)
        if bool(done.any()):
            for i, toks, lp in zip(active[done].tolist(), tokens[done].tolist(), total[done].tolist()):
                out_tokens[i] = toks
                out_log_probs[i] = lp
            keep = (~done).nonzero().squeeze(1)  # (n',)
            if keep.numel() == 0:
                break
            active, max_len, prev, total = active[keep], max_len[keep], prev[keep], total[keep]
            tokens = tokens[keep]
            prefix = prefix[keep] if prefix is not None else None
            encoded = encoded.select(keep)
            state = decoder.reorder_state(state, keep, static=True)
        tokens = torch.cat([tokens, prev.unsqueeze(1)], dim=1)  # (n, step + 1)
        step += 1
    return out_tokens, out_log_probs


@torch.inference_mode()
def greedy_search(
    model: Seq2SeqLike,
    src: Tensor,
    src_mask: Tensor,
    spec: SearchSpec,
    prefixes: Optional[Sequence[Sequence[int]]] = None,
) -> list[list[int]]:
    """Greedy decoding of a batch: src (batch, src_len) ids, src_mask (batch, src_len) bool.

    Returns the output ids (no BOS, no EOS) of each sentence. A sentence stops at EOS or at
    its own maximum length ``int(max_len_a * src_len + max_len_b)``. ``spec.beam``, ``nbest``
    and ``length_penalty`` play no part. ``prefixes``: output ids each sentence must start with
    (empty: none), forced as the module docstring says.
    """
    tokens, _ = _greedy(model, src, src_mask, spec, prefixes)
    return tokens


@torch.inference_mode()
def beam_search(
    model: Seq2SeqLike,
    src: Tensor,
    src_mask: Tensor,
    spec: SearchSpec,
    prefixes: Optional[Sequence[Sequence[int]]] = None,
) -> list[list[Hypothesis]]:
    """Batched beam search: src (batch, src_len) ids, src_mask (batch, src_len) bool.

    Returns, per sentence, up to ``spec.nbest`` hypotheses, best first (fewer only if the model
    gives probability 0 to every continuation, or a prefix leaves no room for another). The
    decoder state holds ``n * beam`` rows
    for the ``n`` active sentences, sentence-major. Each step scores ``2 * beam`` candidates
    per sentence; EOS candidates among the best ``beam`` are finished with score
    ``log_prob / len ** length_penalty`` (``len`` counts EOS), the best ``beam`` non-EOS
    candidates continue. A sentence is done once it has ``beam`` finished hypotheses
    (fairseq's criterion) or reaches its maximum length (its live beams then end with a
    forced EOS); done sentences leave the batch. ``prefixes``: output ids each sentence must start
    with (empty: none), forced as the module docstring says.
    """
    beam, eos_id = spec.beam, spec.eos_id
    decoder = model.decoder
    batch = src.size(0)
    device = src.device
    encoded = model.encode(src, src_mask)
    grouped = decoder.grouped_rows  # if so, the static part (source memory) stays one row per sentence
    # Step 0 runs one row per sentence (its beams would all be the same BOS hypothesis); its
    # best candidates then become the `beam` rows of each sentence.
    state = decoder.init_state(encoded)
    width = 1  # rows per sentence: 1 at step 0, then `beam`

    prefix, max_len = _prefix_table(prefixes, _max_lengths(src_mask, spec), spec)  # (n, P), (n,)
    active = torch.arange(batch, device=device)  # (n,) original position of each active sentence
    scores = torch.zeros((batch, width), dtype=torch.float32, device=device)  # (n, width) running log-probs
    prev = torch.full((batch * width,), spec.bos_id, dtype=torch.long, device=device)  # (n*width,)
    tokens = torch.empty((batch * width, 0), dtype=torch.long, device=device)  # (n*width, step)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    step = 0
    while active.numel() > 0:
        n = active.numel()
        forced = max_len.eq(step)  # (n,)
        lprobs, state = _step_log_probs(
            decoder,
            prev,
            encoded,
            state,
            step,
            forced.repeat_interleave(width),
            spec,
            prefix=_forced_tokens(prefix, step, width),
        )  # (n*width, vocab)
        vocab = lprobs.size(1)

        # Top 2*beam candidates per sentence, in a deterministic order: score descending,
        # ties to the lower flat index (lower beam row, then lower token id).
        k = min(2 * beam, width * vocab)
        top_scores, top_idx = _top_candidates(lprobs, scores, k)  # (n, k)
        del lprobs
        if k < 2 * beam:  # step 0, a vocabulary under 2 x beam: dead (-inf) candidates fill up
            top_scores = torch.cat([top_scores, top_scores.new_full((n, 2 * beam - k), -math.inf)], dim=1)
            top_idx = torch.cat([top_idx, top_idx.new_zeros(n, 2 * beam - k)], dim=1)
        top_idx, order = top_idx.sort(dim=1)
        top_scores = top_scores.gather(1, order)
        top_scores, order = top_scores.sort(dim=1, descending=True, stable=True)
        top_idx = top_idx.gather(1, order)
        cand_row = top_idx // vocab + (torch.arange(n, device=device) * width).unsqueeze(1)  # (n, k)
        cand_tok = top_idx % vocab  # (n, k)
        cand_eos = cand_tok.eq(eos_id)  # (n, k)

        # EOS among the best `beam` candidates: finish those hypotheses.
        finish = cand_eos[:, :beam] & top_scores[:, :beam].isfinite()  # (n, beam)
        if bool(finish.any()):
            sent, pos = finish.nonzero(as_tuple=True)
            rows = cand_row[sent, pos]
            for s, toks, lp in zip(active[sent].tolist(), tokens[rows].tolist(), top_scores[sent, pos].tolist()):
                finished[s].append(Hypothesis(toks, _normalise(lp, step + 1, spec.length_penalty), lp))

        # The best `beam` non-EOS candidates continue (there are at least `beam` of them,
        # since each row contributes at most one EOS candidate).
        pick = cand_eos.to(torch.uint8).sort(dim=1, stable=True)[1][:, :beam]  # (n, beam)
        scores = top_scores.gather(1, pick)  # (n, beam)
        rows = cand_row.gather(1, pick).view(-1)  # (n*beam,) rows of the current state
        prev = cand_tok.gather(1, pick).view(-1)  # (n*beam,)

        counts = torch.tensor([len(finished[s]) for s in active.tolist()], device=device)
        done = counts.ge(beam) | forced  # (n,)
        pruned = bool(done.any())
        if pruned:
            keep = (~done).nonzero().squeeze(1)  # (n',)
            if keep.numel() == 0:
                break
            rows = rows.view(n, beam)[keep].view(-1)  # (n'*beam,)
            prev = prev.view(n, beam)[keep].view(-1)
            scores, active, max_len = scores[keep], active[keep], max_len[keep]
            prefix = prefix[keep] if prefix is not None else None
        if grouped and pruned:
            encoded = encoded.select(keep)
            state = decoder.reorder_state(state, rows, static_index=keep)
        elif not grouped and (pruned or width < beam):
            # `rows` stays within each kept sentence's rows, where the static part is the same
            # on every row, so one index serves the beam reorder, the pruning and step 0's expansion.
            encoded = encoded.select(rows)  # (n'*beam,) rows
            state = decoder.reorder_state(state, rows, static=True)
        else:
            state = decoder.reorder_state(state, rows, static=False)
        tokens = torch.cat([tokens[rows], prev.unsqueeze(1)], dim=1)  # (n*beam, step + 1)
        width = beam
        step += 1

    results = []
    for hyps in finished:
        hyps.sort(key=lambda h: h.score, reverse=True)  # stable: ties keep finishing order
        results.append(hyps[: spec.nbest])
    return results


def generate(
    model: Seq2SeqLike,
    src: Tensor,
    src_mask: Tensor,
    spec: SearchSpec,
    prefixes: Optional[Sequence[Sequence[int]]] = None,
) -> list[list[Hypothesis]]:
    """Greedy search when ``spec.beam == spec.nbest == 1``, else beam search; hypotheses either way.

    Greedy hypotheses carry their log-probability and the same length-normalised score as
    beam search would give them. ``spec.max_output_len`` caps every sentence's maximum length
    (e.g. at the decoder's ``max_positions - 1``: BOS takes position 0). ``prefixes``: output ids
    each sentence must start with (empty: none); its hypotheses' tokens start with them.
    """
    if spec.beam == 1 and spec.nbest == 1:
        with torch.inference_mode():
            tokens, log_probs = _greedy(model, src, src_mask, spec, prefixes)
        return [
            [Hypothesis(toks, _normalise(lp, len(toks) + 1, spec.length_penalty), lp)]
            for toks, lp in zip(tokens, log_probs)
        ]
    return beam_search(model, src, src_mask, spec, prefixes)
