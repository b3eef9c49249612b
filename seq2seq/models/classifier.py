"""A sentence classifier: an encoder (with its bottleneck) and a head on the context vector.

The encoder half has the same submodule names as in :class:`Seq2SeqModel`, so the encoder of
an autoencoder or a translation model loads into it (``load_part(..., "encoder")``), to be
frozen or fine-tuned.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from seq2seq.models.bottleneck import Bottleneck
from seq2seq.models.encoders import masked_pool
from seq2seq.models.types import Composite, Encoder

FEATURES = ("context", "context+max", "context+mean")


class Classifier(Composite):
    """``forward(src (B, S), src_mask (B, S)) -> logits (B, num_labels)``.

    ``features``: the head reads the context vector (``context``), or the context vector
    concatenated with the masked max (``context+max``) or mean (``context+mean``) of the
    encoder's per-position states.
    """

    PARTS = {"encoder": ("encoder", "context_head", "bottleneck"), "head": ("head",)}

    def __init__(
        self,
        encoder: Encoder,
        num_labels: int,
        bottleneck: Optional[Bottleneck] = None,
        hidden: int = 0,
        dropout: float = 0.1,
        features: str = "context",
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"classifier features must be one of {', '.join(FEATURES)}, got '{features}'")
        self.features = features
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.context_head = None  # staged-training interface: never in a classifier
        c = encoder.context_dim + (encoder.d_model if features != "context" else 0)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(c, hidden), nn.Tanh(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or c, num_labels))
        self.head = nn.Sequential(*layers)

    def _features(self, context: Tensor) -> Tensor:
        return context if self.bottleneck is None else self.bottleneck.features(context)

    def context_vectors(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) ids -> (B, c) the encoder's context vectors (deterministic)."""
        return self._features(self.encoder(src, src_mask).context)

    def head_input(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) ids -> (B, c [+ d]) what the head reads (see ``features``)."""
        encoded = self.encoder(src, src_mask)
        context = self._features(encoded.context)
        if self.features == "context":
            return context
        pooled = masked_pool(encoded.states, encoded.mask, self.features.split("+")[1])  # (B, d)
        return torch.cat([context, pooled.to(context.dtype)], dim=-1)

    def forward(self, src: Tensor, src_mask: Tensor) -> Tensor:
        return self.head(self.head_input(src, src_mask))
