"""Batched beam search (:func:`beam_search`) and its two-stage top-k over the vocabulary
(:func:`_top_candidates`). Its conventions, shared with greedy search: the docstring of
:mod:`seq2seq.infer.search`, where :func:`~seq2seq.infer.search.generate` picks between the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor

from seq2seq.infer.search_common import (
    Hypothesis,
    SearchSpec,
    Seq2SeqLike,
    _forced_tokens,
    _max_lengths,
    _normalise,
    _prefix_table,
    _step_log_probs,
)

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
