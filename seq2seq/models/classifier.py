"""A sentence classifier: an encoder (with its bottleneck) and a head on the context vector.

The encoder half has the same submodule names as in :class:`Seq2SeqModel`, so the encoder of
an autoencoder or a translation model loads into it (``load_part(..., "encoder")``), to be
frozen or fine-tuned.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from seq2seq.models.bottleneck import Bottleneck
from seq2seq.models.types import Composite, Encoder


class Classifier(Composite):
    """``forward(src (B, S), src_mask (B, S)) -> logits (B, num_labels)``."""

    PARTS = {"encoder": ("encoder", "context_head", "bottleneck"), "head": ("head",)}

    def __init__(
        self,
        encoder: Encoder,
        num_labels: int,
        bottleneck: Optional[Bottleneck] = None,
        hidden: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.context_head = None  # staged-training interface: never in a classifier
        c = encoder.context_dim
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(c, hidden), nn.Tanh(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or c, num_labels))
        self.head = nn.Sequential(*layers)

    def context_vectors(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) ids -> (B, c) sentence features (deterministic)."""
        context = self.encoder(src, src_mask).context
        return context if self.bottleneck is None else self.bottleneck.features(context)

    def forward(self, src: Tensor, src_mask: Tensor) -> Tensor:
        return self.head(self.context_vectors(src, src_mask))
