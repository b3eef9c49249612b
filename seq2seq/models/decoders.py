"""Decoders: teacher-forced ``forward`` over a whole target and incremental ``step``.

``step`` runs exactly the modules ``forward`` runs, on one position, so the two give the
same logits (tests check this).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from seq2seq.models.attention import BahdanauAttention, LuongAttention, MultiHeadAttention
from seq2seq.models.embeddings import TransformerEmbedding, make_embedding
from seq2seq.models.layers import FeedForward, init_transformer_
from seq2seq.models.types import Decoder, Encoded, rows_of

State = dict[str, Any]


class GRUDecoder(Decoder):
    """A GRU decoder that is parallel over time in teacher forcing (one nn.GRU call).

    Input at step t: [emb(y_{t-1}); context], the context vector fed at every step
    (Cho et al. 2014); every layer's initial hidden state is tanh(Linear(context)).
    There is no input feeding: the GRU never sees the previous attentional vector, which is what
    keeps training a single fused GRU call over the whole target.

    attention="bahdanau" | "luong": the GRU output h_t queries the encoder states (keys
    precomputed once per source in ``init_state``) -> c_t; the attentional vector
    tanh(W[h_t; c_t]) -> dropout -> output projection (Luong et al. 2015 global attention;
    "bahdanau" uses additive scoring in this layout, like OpenNMT's "mlp" attention).

    attention="none": tanh(W[h_t; context; emb_t]) -> dropout -> output projection; the decoder
    sees the source only through ``context``.

    With ``tie_output`` the output projection shares the input embedding's weight.
    The encoder states must have size ``d_model``.

    State: {"hidden": (B, layers, d) batch-first, "static": {"keys": (B, S, *)} with attention}.
    ``step`` takes grouped rows (``Decoder.grouped_rows``).
    """

    grouped_rows = True

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        layers: int = 1,
        dropout: float = 0.1,
        attention: str = "bahdanau",
        context_dim: int = 0,
        pad_id: int = 0,
        embedding: Optional[nn.Embedding] = None,
        tie_output: bool = True,
        embed_dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        if attention not in ("none", "bahdanau", "luong"):
            raise ValueError(f"GRU decoder attention must be none, bahdanau or luong; got '{attention}'")
        self.d_model = d_model
        self.layers = layers
        self.context_dim = context_dim or d_model
        self.attention_type = attention
        self.pad_id = pad_id
        self.embedding = embedding if embedding is not None else make_embedding(vocab_size, d_model, pad_id)
        self.embed_dropout = nn.Dropout(dropout if embed_dropout is None else embed_dropout)
        self.init_proj = nn.Linear(self.context_dim, layers * d_model)
        self.rnn = nn.GRU(
            d_model + self.context_dim,
            d_model,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.attention: Union[BahdanauAttention, LuongAttention, None]
        if attention == "bahdanau":
            self.attention = BahdanauAttention(d_model, d_model, d_model)
        elif attention == "luong":
            self.attention = LuongAttention(d_model, d_model)
        else:
            self.attention = None
        combine_in = 2 * d_model if self.attention is not None else 2 * d_model + self.context_dim
        self.combine = nn.Linear(combine_in, d_model)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(d_model, self.embedding.num_embeddings, bias=False)
        if tie_output:
            self.output.weight = self.embedding.weight

    def init_state(self, encoded: Encoded) -> State:
        b = encoded.context.size(0)
        hidden = torch.tanh(self.init_proj(encoded.context)).view(b, self.layers, self.d_model)
        static = {}
        if self.attention is not None:
            static["keys"] = self.attention.project_keys(encoded.states)  # (B, S, a)
        return {"hidden": hidden, "static": static}

    def _run(self, tgt_in: Tensor, encoded: Encoded, hidden: Tensor, static: dict) -> tuple[Tensor, Tensor]:
        """tgt_in (B, T), hidden (B, layers, d) -> logits (B, T, V), new hidden (B, layers, d)."""
        b, t = tgt_in.shape
        emb = self.embed_dropout(self.embedding(tgt_in))  # (B, T, d)
        ctx = rows_of(encoded.context, b).unsqueeze(1).expand(b, t, self.context_dim)  # (B, T, c)
        h0 = hidden.transpose(0, 1).contiguous()  # (layers, B, d) for nn.GRU
        out, h_n = self.rnn(torch.cat([emb, ctx], dim=-1), h0)  # out: (B, T, d)
        if self.attention is not None:
            c, _ = self.attention(out, static["keys"], encoded.states, encoded.mask)  # (B, T, d)
            vec = torch.tanh(self.combine(torch.cat([out, c], dim=-1)))  # (B, T, d)
        else:
            vec = torch.tanh(self.combine(torch.cat([out, ctx, emb], dim=-1)))  # (B, T, d)
        logits = self.output(self.dropout(vec))  # (B, T, V)
        return logits, h_n.transpose(0, 1)

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        state = self.init_state(encoded)
        logits, _ = self._run(tgt_in, encoded, state["hidden"], state["static"])
        return logits

    def step(self, tokens: Tensor, encoded: Encoded, state: State) -> tuple[Tensor, State]:
        logits, hidden = self._run(tokens.unsqueeze(1), encoded, state["hidden"], state["static"])
        return logits.squeeze(1), {"hidden": hidden, "static": state["static"]}


class TransformerDecoderLayer(nn.Module):
    """Pre-norm: causal self-attention, cross-attention (optional), feed-forward; each x + f(LN(x))."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ffn_dim: int,
        dropout: float,
        attention_dropout: float,
        cross: bool,
    ) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, heads, attention_dropout)
        self.cross_norm: Optional[nn.LayerNorm] = nn.LayerNorm(d_model) if cross else None
        self.cross_attn = MultiHeadAttention(d_model, heads, attention_dropout, cross=True) if cross else None
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def _cross_ffn(self, x: Tensor, src_mask: Tensor, kv: Any) -> Tensor:
        if self.cross_attn is not None:
            assert self.cross_norm is not None
            x = x + self.dropout(self.cross_attn(self.cross_norm(x), mask=src_mask, kv=kv))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))

    def forward(self, x: Tensor, src_mask: Tensor, kv: Any) -> Tensor:
        """x (B, T, d) whole target -> (B, T, d). Target padding sits at the end, so the causal
        mask alone keeps it away from real positions."""
        x = x + self.dropout(self.self_attn(self.self_norm(x), causal=True))
        return self._cross_ffn(x, src_mask, kv)

    def step(
        self, x: Tensor, src_mask: Tensor, kv: Any, cache: tuple[Tensor, Tensor], order: Optional[Tensor] = None
    ) -> tuple[Tensor, Any]:
        """x (B, 1, d) newest position, cache (k, v) of earlier ones (rows ``order`` of it, if
        given) -> (B, 1, d), new cache."""
        a, cache = self.self_attn.step(self.self_norm(x), cache, order)
        x = x + self.dropout(a)
        return self._cross_ffn(x, src_mask, kv), cache


class TransformerDecoder(Decoder):
    """Pre-norm Transformer decoder with a final LayerNorm and a (tied) output projection.

    attention="multihead": every layer cross-attends to ``encoded.states`` (masked).
    attention="none": no cross-attention; Linear(context) is added to every input embedding, so
    the decoder sees the source only through the bottleneck.

    State (all tensors batch-first)::

        {"k": [layer] (B, heads, t, d_head), "v": [...],     # self-attention cache, grows by 1
         "order": (B,) rows of the caches to continue (after reorder_state; optional),
         "static": {"k": [layer] (B, heads, S, d_head), "v": [...]}   # cross-attention
                   or {"context": (B, 1, d)}}                           # attention="none"

    The position of the next step is the cache length t. Targets longer than
    ``max_positions`` raise ValueError. ``step`` takes grouped rows (``Decoder.grouped_rows``).
    """

    grouped_rows = True

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
        attention: str = "multihead",
        context_dim: int = 0,
        pad_id: int = 0,
        embedding: Optional[nn.Embedding] = None,
        tie_output: bool = True,
        embed_dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        if attention not in ("none", "multihead"):
            raise ValueError(f"Transformer decoder attention must be none or multihead; got '{attention}'")
        self.d_model, self.heads = d_model, heads
        self.context_dim = context_dim or d_model
        self.attention_type = attention
        self.pad_id = pad_id
        cross = attention == "multihead"
        token = embedding if embedding is not None else make_embedding(vocab_size, d_model, pad_id)
        self.embed = TransformerEmbedding(
            token, positions, max_positions, dropout if embed_dropout is None else embed_dropout
        )
        self.context_proj = None if cross else nn.Linear(self.context_dim, d_model)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, heads, ffn_dim, dropout, attention_dropout, cross) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, token.num_embeddings, bias=False)
        init_transformer_(self.layers)
        if self.context_proj is not None:
            init_transformer_(self.context_proj)
        if tie_output:
            self.output.weight = token.weight
        else:
            nn.init.normal_(self.output.weight, mean=0.0, std=d_model**-0.5)

    @property
    def embedding(self) -> nn.Embedding:
        """The token embedding table (possibly shared)."""
        return self.embed.token

    def init_state(self, encoded: Encoded) -> State:
        b = encoded.states.size(0)
        dh = self.d_model // self.heads
        empty = encoded.states.new_zeros(b, self.heads, 0, dh)
        static: dict[str, Any] = {}
        if self.context_proj is not None:
            static["context"] = self.context_proj(encoded.context).unsqueeze(1)  # (B, 1, d)
        else:
            kvs = [layer.cross_attn.project_kv(encoded.states) for layer in self.layers]
            static["k"] = [k for k, _ in kvs]
            static["v"] = [v for _, v in kvs]
        return {"k": [empty] * len(self.layers), "v": [empty] * len(self.layers), "static": static}

    def _embed(self, ids: Tensor, static: dict, offset: int) -> Tensor:
        x = self.embed(ids, offset)  # (B, T, d)
        if "context" in static:
            x = x + rows_of(static["context"], x.size(0))  # + (B, 1, d): the bottleneck at every position
        return x

    def _cross_kv(self, static: dict, i: int) -> Any:
        return (static["k"][i], static["v"][i]) if "k" in static else None

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        static = self.init_state(encoded)["static"]
        x = self._embed(tgt_in, static, 0)  # (B, T, d)
        for i, layer in enumerate(self.layers):
            x = layer(x, encoded.mask, self._cross_kv(static, i))
        return self.output(self.norm(x))  # (B, T, V)

    def step(self, tokens: Tensor, encoded: Encoded, state: State) -> tuple[Tensor, State]:
        """Like :meth:`Decoder.step`, except that it consumes ``state``: each layer's cache is
        released from it as its successor is built, so the old and new caches of all layers are
        never alive together (less peak memory in beam search: docs/performance.md). Go on
        from the returned state; stepping a state twice raises RuntimeError."""
        static = state["static"]
        past_k, past_v = state["k"], state["v"]
        if any(k is None for k in past_k):
            raise RuntimeError("this decoder state was stepped already: continue from the state step returned")
        offset = past_k[0].size(2)  # positions decoded so far
        x = self._embed(tokens.unsqueeze(1), static, offset)  # (B, 1, d)
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            cache = (past_k[i], past_v[i])
            past_k[i] = past_v[i] = None  # the state's reference goes; `cache` goes after the layer
            x, (k, v) = layer.step(x, encoded.mask, self._cross_kv(static, i), cache, state.get("order"))
            del cache
            new_k.append(k)
            new_v.append(v)
        logits = self.output(self.norm(x)).squeeze(1)  # (B, V)
        return logits, {"k": new_k, "v": new_v, "static": static}

    @staticmethod
    def reorder_state(
        state: State, index: Tensor, static: bool = False, static_index: Optional[Tensor] = None
    ) -> State:
        """Like :meth:`Decoder.reorder_state`, except that the self-attention caches are not copied
        here: the rows to keep are remembered (``state["order"]``) and the next ``step`` writes
        them and the new position into one new cache, one copy per step instead of two.
        Reorder a state from this decoder with this method (``decoder.reorder_state``): the
        base class's would select the caches' rows without the pending order."""
        pending = state.get("order")
        order = index if pending is None else pending.index_select(0, index)
        caches = {"k": list(state["k"]), "v": list(state["v"]), "order": order}  # own lists: step empties them
        rest = {key: value for key, value in state.items() if key not in caches}
        return {**Decoder.reorder_state(rest, index, static, static_index), **caches}
