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
  float rounding in the model itself, and to ``--quantize int8``'s activation scales, which are
  per call). Exact ties are broken towards the lower beam row, then the lower token id (``argmax``'s
  first-index rule in greedy search).
* BOS and PAD (id 0) are never produced (their probability is set to 0); scores are the model's own
  log-probabilities of the chosen tokens (the softmax is taken before any masking).
* Prefixes: with ``prefixes`` (output ids per sentence), a sentence's first tokens are forced:
  at a prefix position only the prefix token can be chosen, with the model's own log-probability
  (so scores are those of the whole output), and the search goes on from the end of the prefix.
  A sentence's maximum length is at least its prefix's length (a prefix longer than
  ``max_output_len`` is cut to it). Beam search then keeps one live hypothesis per sentence
  through the prefix (its other rows score -inf) and widens after it.

Layout: the settings, the output and the rules of one step shared by both searches are in
:mod:`seq2seq.infer.search_common`, beam search in :mod:`seq2seq.infer.beam`; greedy search and
:func:`generate`, which picks between them, are here. Every public name imports from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor

from seq2seq.infer.beam import beam_search
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

__all__ = ["Hypothesis", "SearchSpec", "beam_search", "generate", "greedy_search"]


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
