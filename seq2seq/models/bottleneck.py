"""Bottlenecks: what the context vector becomes between encoder and decoder (autoencoders).

    plain        the encoder's context vector as it is (no module)
    variational  q(z|x) = N(mu, sigma^2): z = mu + sigma * eps while training, mu at inference;
                 the KL divergence to N(0, I) is returned per sentence
    binary       code = sigmoid(Linear(context) + noise) while training: the Gaussian noise
                 pushes the pre-activations away from 0, so the codes become near binary
                 (Salakhutdinov & Hinton's semantic hashing); rounded to bits at inference.
                 With ``estimator="straight_through"`` the training code is already bits:
                 b ~ Bernoulli(sigmoid(Linear(context))) in the forward pass, the gradient of
                 sigmoid(Linear(context)) in the backward pass (NASH, Shen et al. 2018), so
                 training sees the same kind of code as inference

A bottleneck belongs to the encoder half of a model: an encoder pretrained with one carries
it into a classifier or translation model.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

KINDS = ("plain", "variational", "binary")
ESTIMATORS = ("noise", "straight_through")


class Bottleneck(nn.Module):
    """``forward(context (B, c)) -> (z (B, c), kl (B,) or None)``; see the module docstring."""

    def __init__(self, kind: str, dim: int, noise: float = 1.0, estimator: str = "noise") -> None:
        super().__init__()
        if kind not in ("variational", "binary"):
            raise ValueError(f"bottleneck kind must be variational or binary, got '{kind}'")
        if estimator not in ESTIMATORS:
            raise ValueError(f"binary estimator must be one of {', '.join(ESTIMATORS)}, got '{estimator}'")
        self.kind = kind
        self.dim = dim
        self.noise = noise
        self.estimator = estimator
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
        if self.training and self.estimator == "straight_through":
            probs = torch.sigmoid(logits)  # (B, c)
            bits = torch.bernoulli(probs.detach())  # (B, c) sampled 0/1
            return probs + (bits - probs).detach(), None  # value: bits; gradient: that of probs
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
