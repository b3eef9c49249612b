"""Label-smoothed cross-entropy that ignores padding."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


def label_smoothed_nll(logits: Tensor, target: Tensor, smoothing: float, pad_id: int = 0) -> tuple[Tensor, Tensor, int]:
    """Sum of label-smoothed cross-entropy over non-padding target tokens.

    logits: (batch, len, vocab); target: (batch, len) ids, ``pad_id`` where there is no token.
    Returns (loss_sum, nll_sum, n_tokens): the loss to optimise, the plain negative
    log-likelihood (for perplexity) and the number of real tokens, so that callers can
    normalise after gradient accumulation. Padding positions contribute exactly zero.

    loss = (1 - smoothing) * nll + smoothing * (cross-entropy against the uniform distribution).
    """
    target = target.reshape(-1)  # (N,)
    keep = target.ne(pad_id)  # (N,)
    loss, nll = _LabelSmoothedNLL.apply(logits.float().flatten(0, 1), target, keep, smoothing)
    return loss, nll, int(keep.sum())


class _LabelSmoothedNLL(torch.autograd.Function):
    """(loss_sum, nll_sum) of (N, V) logits, with a hand-written backward.

    The gradient of a kept row is ``a * softmax - b * onehot(target) - c`` for scalars a, b, c
    from the two incoming gradients, computed in place on the saved log-probabilities: three
    passes over the (N, V) tensor where autograd's chain (gather, mean, their sum, then the
    log-softmax backward) made about seven, and allocated a zero-filled (N, V) tensor.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, keep: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        lprobs = F.log_softmax(logits, dim=-1)  # (N, V)
        nll = -lprobs.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)  # (N,); pad rows are masked below
        smooth = -lprobs.mean(dim=-1)  # (N,) cross-entropy against the uniform distribution
        loss = (1.0 - smoothing) * nll + smoothing * smooth
        zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
        ctx.save_for_backward(lprobs, target, keep)
        ctx.smoothing = smoothing
        return torch.where(keep, loss, zero).sum(), torch.where(keep, nll, zero).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Optional[Tensor], grad_nll: Optional[Tensor]) -> tuple[Optional[Tensor], ...]:
        lprobs, target, keep = ctx.saved_tensors
        eps = ctx.smoothing
        g_loss = grad_loss if grad_loss is not None else lprobs.new_zeros(())
        g_nll = grad_nll if grad_nll is not None else lprobs.new_zeros(())
        grad = lprobs.exp_().mul_(g_loss + g_nll)  # softmax, scaled; the saved tensor is not used again
        if eps:
            grad.sub_(g_loss * eps / lprobs.size(1))
        onehot = (g_loss * (1.0 - eps) + g_nll).expand(target.size(0), 1)  # (N, 1)
        grad.scatter_add_(1, target.clamp(min=0).unsqueeze(1), -onehot)
        grad[~keep] = 0.0
        return grad, None, None, None
