"""Attention: multi-head scaled dot-product (Transformer) and additive/multiplicative (GRU).

Masks follow one convention everywhere: a boolean ``mask`` of shape (B, S) is True at real
keys. Padding keys get exactly zero weight (their scores are -inf before the softmax). Every
row must have at least one real key (every sentence has at least EOS); a row with none would
give NaN.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KV = tuple[Tensor, Tensor]  # keys and values, each (B, heads, S, d_head)


class MultiHeadAttention(nn.Module):
    """Multi-head attention on top of :func:`torch.nn.functional.scaled_dot_product_attention`.

    Self-attention (``cross=False``) projects queries, keys and values with one fused Linear.
    Cross-attention (``cross=True``) projects queries from the decoder and keys/values from the
    encoder with a fused K/V Linear; :meth:`project_kv` does the latter once per source so
    incremental decoding can keep the result in ``state["static"]``.

    Usage::

        out = self_attn(x, mask=src_mask)                  # encoder, (B, S, d)
        out = self_attn(x, causal=True)                    # decoder, teacher forcing
        out, cache = self_attn.step(x_t, cache)            # decoder, one step, cache grows by 1
        kv = cross_attn.project_kv(encoded.states)         # once per source
        out = cross_attn(x, mask=src_mask, kv=kv)          # any number of query steps
    """

    FEW_QUERIES = 16  # at most this many queries per row: the matmul path of ``_attend`` (CPU, eval)

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, cross: bool = False) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.d_model, self.heads, self.d_head = d_model, heads, d_model // heads
        self.cross = cross
        self.dropout = dropout
        if cross:
            self.q_proj = nn.Linear(d_model, d_model)
            self.kv_proj = nn.Linear(d_model, 2 * d_model)
        else:
            self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier uniform per d x d block (so fused projections match separate ones), zero bias."""
        for lin in self.modules():
            if isinstance(lin, nn.Linear):
                for block in lin.weight.data.split(self.d_model, dim=0):
                    nn.init.xavier_uniform_(block)
                nn.init.zeros_(lin.bias)

    def _split(self, x: Tensor) -> Tensor:
        """(B, T, d) -> (B, heads, T, d_head)"""
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.d_head).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        """(B, heads, T, d_head) -> (B, T, d)"""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.d_model)

    def project_kv(self, memory: Tensor) -> KV:
        """Cross-attention keys and values: memory (B, S, d) -> (k, v), each (B, heads, S, d_head)."""
        if not self.cross:
            raise RuntimeError("project_kv is for cross-attention (cross=True)")
        k, v = self.kv_proj(memory).chunk(2, dim=-1)
        # Contiguous once here, rather than copied by every decoding step's matmul.
        return self._split(k).contiguous(), self._split(v).contiguous()

    def forward(
        self,
        x: Tensor,
        mask: Optional[Tensor] = None,
        causal: bool = False,
        kv: Optional[KV] = None,
    ) -> Tensor:
        """x: (B, T, d) queries -> (B, T, d).

        mask: (B, S) bool key-padding mask, True at real keys.
        causal: query t sees keys <= t only (self-attention over a whole target, T == S).
        kv: cross-attention keys/values from :meth:`project_kv` (required when ``cross``), of
            B / g sources for g consecutive query rows per source (beam search's rows), with
            ``mask`` then (B / g, S).
        """
        if self.cross:
            if kv is None:
                raise ValueError("cross-attention needs kv=project_kv(memory)")
            k, v = kv
            b, t, d = x.shape
            sources = k.size(0)
            if b != sources:
                # Beam search: g = b / sources consecutive query rows share one source, whose
                # keys/values are kept once, not g times. Its g rows' queries become g * t
                # query positions of that source: (b, t, d) -> (sources, g * t, d).
                out = self._attend(self._split(_group_queries(self.q_proj(x), sources)), k, v, mask, causal, True)
                return out.view(b, t, d)
            q = self._split(self.q_proj(x))
            return self._attend(q, k, v, mask, causal, True)
        q, k, v = (self._split(t) for t in self.qkv_proj(x).chunk(3, dim=-1))
        return self._attend(q, k, v, mask, causal, False)

    def step(self, x: Tensor, cache: KV, order: Optional[Tensor] = None) -> tuple[Tensor, KV]:
        """Incremental self-attention: x (B, 1, d) is the newest position; cache holds the keys and
        values of the earlier ones, (B', heads, t, d_head) each (t may be 0). The new key/value is
        appended and the query attends to all t + 1 positions: O(t) per step.

        order: (B,) rows of the cache to continue (beam search's reorder), applied while appending.

        Returns (out (B, 1, d), new cache with t + 1 positions).
        """
        if self.cross:
            raise RuntimeError("step is for self-attention; use forward(x, mask, kv=...) for cross")
        q, k, v = (self._split(t) for t in self.qkv_proj(x).chunk(3, dim=-1))
        if cache[0].size(2) > 0:  # (the empty cache of step 0 is skipped: it keeps k's dtype)
            k, v = _append(cache[0], k, order), _append(cache[1], v, order)  # (B, h, t+1, dh) each
        return self._attend(q, k, v, None, False, True), (k, v)

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], causal: bool, incremental: bool
    ) -> Tensor:
        """q (B, h, T, dh), k and v (B, h, S, dh) -> (B, T, d). ``incremental``: a decoding step's
        attention (self-attention's ``step``, cross-attention), which may take the matmul path
        below; a whole sequence's self-attention always takes the fused kernel, so that a short
        source is not computed another way alone than padded in a batch (docs/serving.md)."""
        attn_mask = None
        if mask is not None:
            attn_mask = mask[:, None, None, :]  # (B, 1, 1, S): broadcast over heads and queries
            if causal:  # is_causal cannot be combined with a mask: build the (T, S) triangle
                t, s = q.size(-2), k.size(-2)
                tri = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
                attn_mask = attn_mask & tri  # (B, 1, T, S)
                causal = False
        few = incremental and q.size(-2) <= self.FEW_QUERIES
        if few and not causal and not self.training and q.device.type == "cpu":
            # Incremental decoding: a few queries per row. Here two matmuls and a softmax
            # beat the fused kernel on CPU (measured: docs/performance.md); the fused kernel
            # wins on whole sequences.
            one_query = q.size(-2) == 1 and mask is not None  # one query over padded keys (cross-attention)
            if one_query:  # (B, h, 1, dh): sums over dh per key, not a matrix-vector product, whose kernel
                # sums otherwise for some key counts (1 x 16 x 16), so that the padded length changes nothing
                scores = (q * k).sum(-1).unsqueeze(-2) * self.d_head**-0.5  # (B, h, 1, S)
            else:
                scores = torch.matmul(q, k.transpose(-1, -2)) * self.d_head**-0.5  # (B, h, T, S)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            weights = softmax(scores)
            if one_query:  # the keys in order, padding last: it adds exact zeros
                out = (weights.transpose(-1, -2) * v).sum(-2, keepdim=True)  # (B, h, 1, dh)
            else:
                out = torch.matmul(weights, v)  # (B, h, T, dh)
        else:
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=attn_mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=causal,
            )  # (B, h, T, dh)
        return self.out_proj(self._merge(out))


def _append(past: Tensor, new: Tensor, order: Optional[Tensor]) -> Tensor:
    """past (B', h, t, dh) rows ``order`` (all rows if None), then new (B, h, 1, dh) -> (B, h, t+1, dh).

    On CPU the selected rows are written straight into the result: one copy of the cache per
    step instead of two (select, then concatenate).
    """
    if order is None:
        return torch.cat([past, new], dim=2)
    if past.device.type != "cpu":
        return torch.cat([past.index_select(0, order), new], dim=2)
    _, h, t, dh = past.shape
    out = past.new_empty(new.size(0), h, t + 1, dh)
    torch.index_select(past, 0, order, out=out[:, :, :t])
    out[:, :, t:] = new
    return out


def _group_queries(query: Tensor, sources: int) -> Tensor:
    """query (g * B, T, d) for B sources, g consecutive rows each -> (B, g * T, d)."""
    if query.size(0) % sources:
        raise ValueError(f"{query.size(0)} query rows do not divide into {sources} sources")
    return query.reshape(sources, -1, query.size(-1))


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """scores (B, T, S), mask (B, S) -> weights (B, T, S); exactly 0 where mask is False."""
    return softmax(scores.masked_fill(~mask[:, None, :], float("-inf")))


SHORT_ROWS = 16  # softmax rows shorter than this: see `softmax`


def softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dimension, the same values as ``scores.softmax(-1)``.

    PyTorch's CPU kernel vectorizes along that dimension only from 16 elements on: below, it is
    slower than ``exp`` and ``sum`` as separate ops (docs/performance.md), and incremental
    decoding's attention rows (keys so far, or a short source) are mostly that short. Without
    autograd only; otherwise the kernel.
    """
    if scores.size(-1) >= SHORT_ROWS or scores.device.type != "cpu" or scores.requires_grad:
        return scores.softmax(dim=-1)
    weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return weights / weights.sum(dim=-1, keepdim=True)


class BahdanauAttention(nn.Module):
    """Additive attention (Bahdanau et al. 2015): score(q, k) = v . tanh(W_q q + W_k k).

    ``project_keys`` computes W_k k once per source. ``forward`` scores all T queries at once;
    note that teacher forcing materialises a (B, T, S, attn_dim) tensor.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, states: Tensor) -> Tensor:
        """states (B, S, key_dim) -> keys (B, S, attn_dim)"""
        return self.key_proj(states)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, dq), keys (B, S, a), values (B, S, dv), mask (B, S)
        -> context (B, T, dv), weights (B, T, S).

        Query rows may also be g * B, g consecutive rows per source (beam search)."""
        rows, t, _ = query.shape
        q = _group_queries(self.query_proj(query), keys.size(0))  # (B, g*T, a)
        scores = self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B, g*T, S)
        weights = _masked_softmax(scores, mask)
        context = torch.bmm(weights, values)  # (B, g*T, dv)
        return context.view(rows, t, -1), weights.view(rows, t, -1)


class LuongAttention(nn.Module):
    """Multiplicative attention, Luong et al. 2015 "general": score(q, k) = q . (W k).

    ``project_keys`` computes W k once per source.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, states: Tensor) -> Tensor:
        """states (B, S, key_dim) -> keys (B, S, query_dim)"""
        return self.key_proj(states)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, dq), keys (B, S, dq), values (B, S, dv), mask (B, S)
        -> context (B, T, dv), weights (B, T, S).

        Query rows may also be g * B, g consecutive rows per source (beam search)."""
        rows, t, _ = query.shape
        scores = torch.bmm(_group_queries(query, keys.size(0)), keys.transpose(1, 2))  # (B, g*T, S)
        weights = _masked_softmax(scores, mask)
        context = torch.bmm(weights, values)  # (B, g*T, dv)
        return context.view(rows, t, -1), weights.view(rows, t, -1)
