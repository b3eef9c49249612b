"""Label-smoothed cross-entropy that ignores padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def label_smoothed_nll(
    logits: Tensor, target: Tensor, smoothing: float, pad_id: int = 0
) -> tuple[Tensor, Tensor, int]:
    """Sum of label-smoothed cross-entropy over non-padding target tokens.

    logits: (batch, len, vocab); target: (batch, len) ids, ``pad_id`` where there is no token.
    Returns (loss_sum, nll_sum, n_tokens): the loss to optimise, the plain negative
    log-likelihood (for perplexity) and the number of real tokens, so that callers can
    normalise after gradient accumulation. Padding positions contribute exactly zero.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1).flatten(0, 1)  # (N, V)
    target = target.reshape(-1)  # (N,)
    keep = target.ne(pad_id)  # (N,)
    nll = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
    smooth = -lprobs.mean(dim=-1)  # (N,) cross-entropy against the uniform distribution
    loss = (1.0 - smoothing) * nll + smoothing * smooth
    zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
    return (
        torch.where(keep, loss, zero).sum(),
        torch.where(keep, nll, zero).sum(),
        int(keep.sum()),
    )
