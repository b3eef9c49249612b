"""Input noise for denoising autoencoders, and decoder word dropout.

Noise corrupts the encoder's *input* only; the target stays the clean sentence. The trainer
applies it to training batches and never at validation or inference.

Three corruptions, each with its own probability (as in Lample et al. 2018, Hill et al. 2016):

- **drop**: each token is deleted with probability ``drop`` (at least one token is kept);
- **mask**: each remaining token is replaced by ``mask_id`` with probability ``mask``;
- **local shuffle**: with probability ``shuffle`` the sentence is permuted so that no token
  moves more than ``distance`` positions (sort by ``i + U(0, distance + 1)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def local_shuffle(ids: Sequence[int], distance: int, rng: np.random.Generator) -> list[int]:
    """A permutation of ``ids`` in which every token moves at most ``distance`` positions."""
    keys = np.arange(len(ids)) + rng.uniform(0.0, distance + 1.0, size=len(ids))
    return [ids[i] for i in np.argsort(keys, kind="stable")]


def add_noise(
    ids: Sequence[int],
    rng: np.random.Generator,
    drop: float = 0.0,
    mask: float = 0.0,
    shuffle: float = 0.0,
    distance: int = 3,
    mask_id: int = 1,
) -> list[int]:
    """A corrupted copy of ``ids`` (the input is never modified); see the module docstring."""
    out = list(ids)
    if not out:
        return out
    if shuffle and rng.random() < shuffle:
        out = local_shuffle(out, distance, rng)
    if drop:
        keep = rng.random(len(out)) >= drop
        if not keep.any():
            keep[rng.integers(len(out))] = True
        out = [t for t, k in zip(out, keep) if k]
    if mask:
        hit = rng.random(len(out)) < mask
        out = [mask_id if h else t for t, h in zip(out, hit)]
    return out


def word_dropout(tgt_in: Tensor, p: float, unk_id: int, keep_ids: Sequence[int] = (0, 2)) -> Tensor:
    """Decoder inputs (B, T) with each token replaced by ``unk_id`` with probability ``p``
    (Bowman et al. 2016): the decoder must lean on the context vector. ``keep_ids`` (padding,
    BOS) are never replaced. Uses torch's global RNG."""
    if p <= 0:
        return tgt_in
    hit = torch.rand(tgt_in.shape, device=tgt_in.device) < p
    for i in keep_ids:
        hit &= tgt_in.ne(i)
    return tgt_in.masked_fill(hit, unk_id)
