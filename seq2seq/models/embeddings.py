"""Token and position embeddings.

GRU models use a plain :class:`torch.nn.Embedding`. Transformers scale the token embedding by
sqrt(d_model) (Vaswani et al. 2017, section 3.4) and add a position embedding, either the fixed
sinusoids or a learned table. During incremental decoding ``offset`` says where the new tokens
start, so step t gets position t.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def make_embedding(vocab_size: int, d_model: int, pad_id: int = 0) -> nn.Embedding:
    """An embedding table initialised N(0, d_model^-0.5) with a zero padding row.

    With ``padding_idx`` the padding row gets no gradient from the lookup (it may still get
    one through a tied output projection; that is harmless because padding is always masked).
    """
    emb = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
    init_embedding_(emb)
    return emb


def init_embedding_(emb: nn.Embedding) -> None:
    """N(0, d^-0.5) and a zero padding row, in place."""
    nn.init.normal_(emb.weight, mean=0.0, std=emb.embedding_dim**-0.5)
    if emb.padding_idx is not None:
        with torch.no_grad():
            emb.weight[emb.padding_idx].zero_()


def _check_length(length: int, offset: int, max_positions: int) -> None:
    if offset + length > max_positions:
        raise ValueError(
            f"sequence of {offset + length} positions is longer than max_positions={max_positions}; "
            "truncate the input or raise model.max_positions"
        )


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids: P[p, 2i] = sin(p / 10000^(2i/d)), P[p, 2i+1] = cos(same)."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        position = torch.arange(max_positions, dtype=torch.float).unsqueeze(1)  # (P, 1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_positions, d_model)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        # Not persistent: it is a function of the config, so checkpoints need not carry it.
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        """-> (length, d_model), the rows for positions offset .. offset + length - 1."""
        _check_length(length, offset, self.max_positions)
        return self.table[offset : offset + length]


class LearnedPositions(nn.Module):
    """A learned table of ``max_positions`` vectors, initialised N(0, d^-0.5)."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, mean=0.0, std=d_model**-0.5)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        """-> (length, d_model), the rows for positions offset .. offset + length - 1."""
        _check_length(length, offset, self.max_positions)
        return self.table.weight[offset : offset + length]


def make_positions(kind: str, d_model: int, max_positions: int) -> nn.Module:
    """``"sinusoidal"`` or ``"learned"``."""
    if kind == "sinusoidal":
        return SinusoidalPositions(d_model, max_positions)
    if kind == "learned":
        return LearnedPositions(d_model, max_positions)
    raise ValueError(f"unknown positions '{kind}' (sinusoidal or learned)")


class TransformerEmbedding(nn.Module):
    """ids (B, T) -> dropout(sqrt(d) * E[ids] + P[offset : offset + T]) of shape (B, T, d).

    ``token`` may be shared with other modules (source/target sharing, tied output).
    """

    def __init__(
        self,
        token: nn.Embedding,
        positions: str = "sinusoidal",
        max_positions: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.d_model = token.embedding_dim
        self.scale = math.sqrt(self.d_model)
        self.positions = make_positions(positions, self.d_model, max_positions)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor, offset: int = 0) -> Tensor:
        x = self.token(ids) * self.scale  # (B, T, d)
        x = x + self.positions(ids.size(1), offset).to(x.dtype)  # + (T, d)
        return self.dropout(x)
