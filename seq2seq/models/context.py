"""Context targets: a context vector whose meaning a person fixes in advance.

With a context target the model has a K-dimensional *interface* between its halves::

    encoder -> context (c) -> context_head: Linear(c, K) -> activation -> vector (K)
    vector (K) -> context_input: Linear(K, c) -> the decoder's context

The interface vector can be trained to match a given vector per example (``loss="ce"``: K is
split into ``blocks`` equal blocks, each a one-hot class, e.g. one block of 11 per decimal
place of a number; ``loss="mse"``: any real vector). That makes three regimes possible with
one architecture: end-to-end (the interface is just a bottleneck), staged (the encoder learns
input -> vector, the decoder learns vector -> output, separately) and staged + joint
fine-tuning. The activation is a softmax per block (``ce``) or the identity (``mse``), so a
staged decoder trained on one-hot vectors reads the encoder's probabilities after joining.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("ce", "mse")


@dataclass(frozen=True)
class ContextTarget:
    """Shape and loss of the interface vector: ``dim`` values in ``blocks`` equal blocks."""

    dim: int
    blocks: int = 1
    loss: str = "ce"  # ce (one-hot classes per block) | mse (regression)

    def __post_init__(self) -> None:
        if self.dim < 1 or self.blocks < 1 or self.dim % self.blocks:
            raise ValueError(f"context target dim {self.dim} must be a positive multiple of blocks {self.blocks}")
        if self.loss not in LOSSES:
            raise ValueError(f"context target loss must be one of {', '.join(LOSSES)}, got '{self.loss}'")

    @property
    def classes(self) -> int:
        """Classes per block (``ce``)."""
        return self.dim // self.blocks

    def activate(self, raw: Tensor) -> Tensor:
        """(B, K) head outputs -> (B, K) interface vector (softmax per block, or identity)."""
        if self.loss == "mse":
            return raw
        b = raw.size(0)
        return torch.softmax(raw.float().view(b, self.blocks, self.classes), dim=-1).view(b, self.dim).to(raw.dtype)

    def loss_sum(self, raw: Tensor, target: Tensor) -> tuple[Tensor, int, Tensor]:
        """Summed loss of head outputs ``raw`` (B, K) against ``target`` (B, K).

        Returns ``(loss_sum, n_terms, correct)``: ``n_terms`` is what the sum runs over (B*blocks
        for ``ce``, B*K for ``mse``); ``correct`` (B,) bool is True where every block's argmax
        matches (``ce``) or every value is within 0.5 (``mse``).
        """
        b = raw.size(0)
        if self.loss == "mse":
            diff = raw.float() - target.float()
            return diff.pow(2).sum(), b * self.dim, diff.abs().lt(0.5).all(dim=1)
        logits = raw.float().view(b * self.blocks, self.classes)  # (B*blocks, classes)
        classes = target.view(b, self.blocks, self.classes).argmax(dim=-1)  # (B, blocks)
        loss = F.cross_entropy(logits, classes.reshape(-1), reduction="sum")
        correct = logits.argmax(dim=-1).view(b, self.blocks).eq(classes).all(dim=1)
        return loss, b * self.blocks, correct
