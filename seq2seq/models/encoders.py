"""Encoders: a padded batch of source ids -> :class:`Encoded` (states, mask, context).

Both encoders guarantee that padding never changes the result for real tokens: a sentence
encodes the same alone or inside a padded batch.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.models.attention import MultiHeadAttention
from seq2seq.models.embeddings import TransformerEmbedding, make_embedding
from seq2seq.models.layers import FeedForward, init_transformer_
from seq2seq.models.types import Encoded, Encoder, lengths_from_mask

POOLINGS = ("final", "mean", "max")


def masked_pool(states: Tensor, mask: Tensor, how: str) -> Tensor:
    """states (B, S, d), mask (B, S) -> (B, d): mean or max over the real positions only."""
    m = mask.unsqueeze(-1)  # (B, S, 1)
    if how == "max":
        return states.masked_fill(~m, float("-inf")).max(dim=1).values
    if how == "mean":
        total = states.masked_fill(~m, 0.0).sum(dim=1)
        return total / m.sum(dim=1).clamp(min=1).to(states.dtype)
    raise ValueError(f"unknown pooling '{how}' (mean or max)")


class GRUEncoder(Encoder):
    """Multi-layer (bi)directional GRU over packed sequences.

    states: the top layer's outputs; bidirectional ones (2d) are projected back to d_model.
    context (``pooling``):
      - ``final``: the top layer's final forward (and backward) hidden states, concatenated;
      - ``mean`` / ``max``: masked pooling of ``states``;
    then Linear -> tanh -> ``context_dim``.

    With ``pooling="final"`` and a decoder without attention, ``states`` (and so ``out_proj``)
    is unused and gets no gradient.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        context_dim: int = 0,
        pooling: str = "final",
        pad_id: int = 0,
        embedding: Optional[nn.Embedding] = None,
        embed_dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}' ({', '.join(POOLINGS)})")
        self.d_model = d_model
        self.context_dim = context_dim or d_model
        self.pooling = pooling
        self.pad_id = pad_id
        self.dirs = 2 if bidirectional else 1
        self.embedding = embedding if embedding is not None else make_embedding(vocab_size, d_model, pad_id)
        self.embed_dropout = nn.Dropout(dropout if embed_dropout is None else embed_dropout)
        self.rnn = nn.GRU(
            d_model,
            d_model,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(self.dirs * d_model, d_model) if bidirectional else nn.Identity()
        pooled_dim = self.dirs * d_model if pooling == "final" else d_model
        self.context_proj = nn.Linear(pooled_dim, self.context_dim)

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        return self.encode_vectors(self.embedding(src), src_mask)

    def encode_vectors(self, x: Tensor, src_mask: Tensor) -> Encoded:
        """x (B, S, d_model): one input vector per position in place of token embeddings (e.g. image
        codes, ``vision.py``), src_mask (B, S) -> Encoded. ``forward`` is this on the embedded ids."""
        b, s = src_mask.shape
        x = self.embed_dropout(x)  # (B, S, d)
        # Packing makes the GRU stop at each sentence's end; an empty row is given length 1.
        lengths = lengths_from_mask(src_mask).clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n: (layers * dirs, B, d), in the original batch order
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=s)  # (B, S, dirs * d)
        states = self.out_proj(self.dropout(out))  # (B, S, d)
        states = states.masked_fill(~src_mask.unsqueeze(-1), 0.0)

        if self.pooling == "final":
            top = h_n[-self.dirs :]  # (dirs, B, d): the top layer, forward then backward
            pooled = top.transpose(0, 1).reshape(b, self.dirs * self.d_model)  # (B, dirs * d)
        else:
            pooled = masked_pool(states, src_mask, self.pooling)  # (B, d)
        context = torch.tanh(self.context_proj(self.dropout(pooled)))  # (B, context_dim)
        return Encoded(states=states, mask=src_mask, context=context)


class TransformerEncoderLayer(nn.Module):
    """Pre-norm: x = x + Attn(LN(x)); x = x + FFN(LN(x))."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, attention_dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), mask=mask))  # (B, S, d)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class TransformerEncoder(Encoder):
    """Pre-norm Transformer encoder (Vaswani et al. 2017; Xiong et al. 2020) with a final LayerNorm.

    context: masked mean (``pooling="mean"``, also used for ``"final"``, which has no meaning
    for a Transformer) or max of ``states`` -> Linear -> tanh -> ``context_dim``.
    Sources longer than ``max_positions`` raise ValueError (callers truncate).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        layers: int = 3,
        heads: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        positions: str = "sinusoidal",
        max_positions: int = 1024,
        context_dim: int = 0,
        pooling: str = "mean",
        pad_id: int = 0,
        embedding: Optional[nn.Embedding] = None,
        embed_dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}' ({', '.join(POOLINGS)})")
        self.d_model = d_model
        self.context_dim = context_dim or d_model
        self.pooling = "mean" if pooling == "final" else pooling
        self.pad_id = pad_id
        token = embedding if embedding is not None else make_embedding(vocab_size, d_model, pad_id)
        self.embed = TransformerEmbedding(
            token, positions, max_positions, dropout if embed_dropout is None else embed_dropout
        )
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, heads, ffn_dim, dropout, attention_dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.context_proj = nn.Linear(d_model, self.context_dim)
        init_transformer_(self.layers)
        init_transformer_(self.context_proj)

    @property
    def embedding(self) -> nn.Embedding:
        """The token embedding table (possibly shared)."""
        return self.embed.token

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        return self._encode(self.embed(src), src_mask)

    def encode_vectors(self, x: Tensor, src_mask: Tensor) -> Encoded:
        """x (B, S, d_model): one input vector per position in place of token embeddings (e.g. image
        codes, ``vision.py``), src_mask (B, S) -> Encoded. Positions and dropout are added as for
        tokens; the vectors are not scaled by sqrt(d_model)."""
        x = x + self.embed.positions(x.size(1)).to(x.dtype)  # + (S, d)
        return self._encode(self.embed.dropout(x), src_mask)

    def _encode(self, x: Tensor, src_mask: Tensor) -> Encoded:
        """x (B, S, d) embedded, positioned inputs -> Encoded."""
        for layer in self.layers:
            x = layer(x, src_mask)
        states = self.norm(x).masked_fill(~src_mask.unsqueeze(-1), 0.0)  # (B, S, d)
        context = torch.tanh(self.context_proj(masked_pool(states, src_mask, self.pooling)))  # (B, c)
        return Encoded(states=states, mask=src_mask, context=context)
