"""Adversarial training on word embeddings for classifiers (Miyato, Dai & Goodfellow 2017,
"Adversarial training methods for semi-supervised text classification").

Each training batch is run twice: once as it is, and once with every sentence's word
embeddings moved a small step in the direction that raises its loss most (to first order).
The classifier learns from both losses, so a small change of the input can no longer flip its
decision. The step of one sentence has the length ``eps`` times the norm of that sentence's
embeddings (all its positions together), so ``eps`` means the same for any embedding scale;
padding positions are not moved.

    captured = []
    with perturb_embeddings(encoder.embedding, capture=captured):
        loss = ...                                   # the clean forward pass
    (grad,) = torch.autograd.grad(loss, captured[0], retain_graph=True)
    step = adversarial_step(grad, captured[0], src_mask, eps)
    with perturb_embeddings(encoder.embedding, add=step):
        adversarial_loss = ...                       # the same batch, embeddings + step
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

from torch import Tensor, nn

__all__ = ["adversarial_step", "perturb_embeddings"]


@contextmanager
def perturb_embeddings(
    embedding: nn.Embedding, add: Optional[Tensor] = None, capture: Optional[list[Tensor]] = None
) -> Iterator[None]:
    """While inside: ``add`` (B, S, d) is added to what ``embedding`` returns, and the result is
    appended to ``capture`` (to take its gradient). The hook is removed on leaving."""

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        if add is not None:
            output = output + add.to(output.dtype)
        if capture is not None:
            capture.append(output)
        return output

    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def adversarial_step(grad: Tensor, embedded: Tensor, mask: Tensor, eps: float) -> Tensor:
    """The perturbation: grad and embedded (B, S, d), mask (B, S) True at real tokens -> (B, S, d)
    along ``grad``, with norm ``eps`` x the norm of each sentence's embeddings; zero at padding and
    for a sentence whose gradient is zero. Detached."""
    keep = mask.unsqueeze(-1).to(grad.dtype)  # (B, S, 1)
    grad = grad.detach() * keep
    grad_norm = grad.flatten(1).norm(dim=1)  # (B,)
    embedded_norm = (embedded.detach() * keep).flatten(1).norm(dim=1)  # (B,)
    scale = eps * embedded_norm / grad_norm.clamp_min(1e-12)  # (B,)
    return grad * scale.view(-1, 1, 1)
