"""A bag-of-words decoder head: the context vector predicts which words the target contains.

Semantic hashing in the VDSH / NASH manner (Chaidaroon & Fang 2017; Shen et al. 2018):
the code z (the context vector, after any bottleneck) gives one distribution over the target
vocabulary, ``p(w | z) = softmax(W z + b)``, and the loss is the negative log-likelihood of
the target's tokens as a multiset, ``-sum_w count(w) * log p(w | z)``, normalised per token by
the trainer like any token loss. Word order is not modelled, so there is no autoregressive
decoder: one Linear layer, cheap enough to train many epochs on a CPU.

With ``task: autoencoder`` the target is the sentence itself (its source possibly noised),
with ``task: translation`` another sentence (e.g. another caption of the same image).

The head cannot generate sequences: ``init_state`` / ``step`` raise a :class:`Seq2SeqError`
that says so (``seq2seq translate`` / ``reconstruct``); ``encode`` / ``hash`` / ``search`` use
only the encoder and bottleneck and work as for any checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2seq.errors import Seq2SeqError
from seq2seq.models.types import Decoder, Encoded

CANNOT_GENERATE = (
    "this checkpoint has a bag-of-words decoder (model.decoder: bow): it predicts which words a "
    "sentence contains, not their order, so it cannot generate, translate or reconstruct sentences. "
    "Use it through its encoder: 'seq2seq encode', 'seq2seq hash', 'seq2seq search'"
)


class BagOfWordsDecoder(Decoder):
    """context (B, c) -> logits (B, V) of one distribution over the target vocabulary.

    ``forward(tgt_in, encoded)`` ignores ``tgt_in`` (the target enters only through the loss,
    :func:`bag_of_words_nll`) and returns (B, V) logits, not (B, T, V) like the sequence
    decoders: one prediction per sentence. ``dropout`` applies to the context vector.
    """

    bag_of_words = True

    def __init__(self, vocab_size: int, context_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.context_dim = context_dim
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(context_dim, vocab_size)  # W (V, c), b (V,)

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        """tgt_in: (B, T) ids (unused); encoded.context: (B, c) -> logits (B, V)."""
        return self.output(self.dropout(encoded.context))  # (B, V)

    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        raise Seq2SeqError(CANNOT_GENERATE)

    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        raise Seq2SeqError(CANNOT_GENERATE)


def bag_of_words_nll(
    logits: Tensor, target: Tensor, smoothing: float = 0.0, skip: Iterable[int] = (0,)
) -> tuple[Tensor, Tensor, int]:
    """The multiset NLL of the target tokens under one distribution per sentence.

    logits: (B, V); target: (B, T) ids, those in ``skip`` (padding, end of sentence: the same
    in every sentence) not counted. Returns (loss_sum, nll_sum, n_tokens) as
    :func:`~seq2seq.train.losses.label_smoothed_nll` does: nll_sum = -sum over the counted
    tokens of log p(token | sentence); loss_sum mixes in ``smoothing`` times the cross-entropy
    against the uniform distribution, per token.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1)  # (B, V)
    keep = torch.ones_like(target, dtype=torch.bool)  # (B, T)
    for token in skip:
        keep &= target.ne(token)
    token_lp = lprobs.gather(1, target.clamp(min=0))  # (B, T): log p(w_t | z_b)
    weights = keep.to(lprobs.dtype)  # (B, T)
    nll = -(token_lp * weights).sum()
    if smoothing:
        uniform = -lprobs.mean(dim=-1)  # (B,)
        loss = (1.0 - smoothing) * nll + smoothing * (uniform * weights.sum(dim=1)).sum()
    else:
        loss = nll
    return loss, nll, int(keep.sum())


def target_counts(train: Any, sample: int = 200_000, seed: int = 0) -> np.ndarray:
    """(max id + 1,) int64 counts of the target tokens of (up to ``sample`` random rows of) a
    training token store (:class:`~seq2seq.data.store.TokenStore` or ``CorpusMix``)."""
    rows = np.arange(train.size)
    if train.size > sample:
        rows = np.sort(np.random.default_rng(seed).choice(train.size, sample, replace=False))
    tokens = [t for seq in train.targets(rows) for t in seq]
    return np.bincount(np.asarray(tokens, dtype=np.int64), minlength=1)


@torch.no_grad()
def start_from_unigram(decoder: BagOfWordsDecoder, counts: np.ndarray, skip: Iterable[int] = (0,)) -> None:
    """Set the head's bias to the add-one smoothed unigram log-probabilities of ``counts`` (ids
    in ``skip`` get the smallest). Starting from zeros, the first updates' gradient is the
    same for every sentence (learn the word frequencies); it drives the encoder's tanh context
    into saturation, where no gradient passes and the code never learns. From the unigram,
    what is left to learn is what differs between sentences."""
    v = decoder.vocab_size
    c = np.zeros(v, dtype=np.float64)
    c[: min(v, len(counts))] = counts[:v]
    c += 1.0
    for token in skip:
        c[token] = 1.0
    decoder.output.bias.copy_(torch.from_numpy(np.log(c / c.sum())).to(decoder.output.bias.dtype))
