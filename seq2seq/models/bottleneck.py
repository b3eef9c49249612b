"""Bottlenecks: what the context vector becomes between encoder and decoder (autoencoders).

    plain        the encoder's context vector as it is (no module)
    variational  q(z|x) = N(mu, sigma^2): z = mu + sigma * eps while training, mu at inference;
                 the KL divergence to N(0, I) is returned per sentence
    binary       code = sigmoid(Linear(context) + noise) while training: the Gaussian noise
                 pushes the pre-activations away from 0, so the codes become near binary
                 (Salakhutdinov & Hinton's semantic hashing); rounded to bits at inference

A bottleneck belongs to the encoder half of a model: an encoder pretrained with one carries
it into a classifier or translation model.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

KINDS = ("plain", "variational", "binary")


class Bottleneck(nn.Module):
    """``forward(context (B, c)) -> (z (B, c), kl (B,) or None)``; see the module docstring."""

    def __init__(self, kind: str, dim: int, noise: float = 1.0) -> None:
        super().__init__()
        if kind not in ("variational", "binary"):
            raise ValueError(f"bottleneck kind must be variational or binary, got '{kind}'")
        self.kind = kind
        self.dim = dim
        self.noise = noise
        if kind == "variational":
            self.mu = nn.Linear(dim, dim)
            self.logvar = nn.Linear(dim, dim)
        else:
            self.code = nn.Linear(dim, dim)

    def forward(self, context: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        if self.kind == "variational":
            mu, logvar = self.mu(context).float(), self.logvar(context).float().clamp(-20.0, 10.0)  # (B, c)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)  # (B,)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
            return z.to(context.dtype), kl
        logits = self.code(context)  # (B, c)
        if self.training:
            return torch.sigmoid(logits + self.noise * torch.randn_like(logits)), None
        return logits.gt(0).to(context.dtype), None  # bits

    def features(self, context: Tensor) -> Tensor:
        """Deterministic real-valued features (B, c): mu, or the code probabilities."""
        if self.kind == "variational":
            return self.mu(context)
        return torch.sigmoid(self.code(context))

    def bits(self, context: Tensor) -> Tensor:
        """(B, c) bool codes (binary bottleneck only)."""
        if self.kind != "binary":
            raise RuntimeError("bits() needs a binary bottleneck")
        return self.code(context).gt(0)
