"""The contract between encoders and decoders.

An encoder turns a padded batch of token ids into an :class:`Encoded`; a decoder reads it.
With attention a decoder reads ``states`` (masked by ``mask``); without attention it reads only
``context``, the fixed-size summary that is the model's bottleneck. Because every encoder
returns the same thing, any encoder pairs with any decoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn


@dataclass
class Encoded:
    states: Tensor  # (batch, src_len, d_model) one vector per source position
    mask: Tensor  # (batch, src_len) bool, True at real tokens
    context: Tensor  # (batch, d_context) the fixed-size summary: the bottleneck
    kl: Optional[Tensor] = None  # (batch,) KL term of a variational bottleneck's sample (training)

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` of the batch (reorder or repeat sentences, e.g. for beam search)."""
        return Encoded(
            states=self.states.index_select(0, index),
            mask=self.mask.index_select(0, index),
            context=self.context.index_select(0, index),
            kl=None if self.kl is None else self.kl.index_select(0, index),
        )


class Encoder(nn.Module, ABC):
    """Base class of encoders: ``forward(src, src_mask) -> Encoded``."""

    d_model: int  # size of each vector in Encoded.states
    context_dim: int  # size of Encoded.context

    @abstractmethod
    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        """src: (batch, src_len) ids, src_mask: (batch, src_len) bool -> Encoded."""


class Decoder(nn.Module, ABC):
    """Base class of decoders.

    Training (teacher forcing) runs the whole target at once; generation runs one step at a
    time with an incremental state (GRU hidden state, Transformer key/value cache), so step t
    costs O(t) (Transformer) or O(1) (GRU), never a re-run of the prefix.

    The state is a dict of tensors whose first dimension is the batch, so search code can
    reorder it generically with :meth:`reorder_state`.

    ``grouped_rows``: the decoder's ``step`` also accepts ``g * B`` rows of tokens (and state)
    for an ``encoded`` and ``init_state`` static part of ``B`` sentences, row ``r`` belonging
    to sentence ``r // g``. Beam search then keeps each sentence's source memory once, not
    once per beam. Decoders without it get ``encoded`` repeated to one row per beam.
    """

    grouped_rows: bool = False

    @abstractmethod
    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        """tgt_in: (batch, tgt_len) ids starting with BOS -> logits (batch, tgt_len, vocab)."""

    @abstractmethod
    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        """The incremental state before the first step."""

    @abstractmethod
    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """tokens: (batch,) the previous output (BOS at step 0) -> (logits (batch, vocab), new state).

        Must give the same logits as ``forward`` at that position (up to float rounding). The
        caller owns the returned logits (search overwrites them in place with log-probabilities):
        return a tensor that nothing else refers to, not a view of the state.
        """

    @staticmethod
    def reorder_state(
        state: dict[str, Any], index: Tensor, static: bool = False, static_index: Optional[Tensor] = None
    ) -> dict[str, Any]:
        """Select batch rows ``index`` from every tensor in ``state`` (lists/tuples/dicts mapped).

        ``state["static"]`` holds what depends only on the source sentence (e.g. projected
        encoder keys/values): it is identical across one sentence's beam hypotheses, so beam
        search leaves it alone (``static=False``); pass ``static=True`` when sentences are
        dropped from or reordered in the batch, or ``static_index`` to select other rows of it
        than ``index`` (a ``grouped_rows`` static part has one row per sentence).
        """
        if static_index is not None:
            picked = Decoder.reorder_state({k: v for k, v in state.items() if k != "static"}, index)
            if "static" in state:
                picked["static"] = Decoder.reorder_state(state["static"], static_index)
            return picked

        def pick(x: Any) -> Any:
            if isinstance(x, Tensor):
                return x.index_select(0, index)
            if isinstance(x, (list, tuple)):
                return type(x)(pick(v) for v in x)
            if isinstance(x, dict):
                return {k: pick(v) for k, v in x.items()}
            return x

        return {k: (v if k == "static" and not static else pick(v)) for k, v in state.items()}


def rows_of(per_source: Tensor, rows: int) -> Tensor:
    """(B, ...) one entry per source -> (rows, ...) one per decoder row, for ``rows = g * B``
    rows grouped sentence-major (see ``Decoder.grouped_rows``); the tensor itself when g = 1."""
    sources = per_source.size(0)
    if rows == sources:
        return per_source
    if rows % sources:
        raise ValueError(f"{rows} decoder rows do not divide into {sources} sources")
    return per_source.repeat_interleave(rows // sources, dim=0)


class Composite(nn.Module):
    """A model made of named parts (``PARTS``: part name -> submodule attribute names).

    Parts are what ``train.freeze`` freezes and what loading an encoder or decoder from another
    checkpoint copies; attributes that are None are skipped.
    """

    PARTS: dict[str, tuple[str, ...]] = {}

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters; shared/tied ones are counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def part(self, name: str) -> list[nn.Module]:
        """The submodules of part ``name`` (a key of ``PARTS``, or any submodule's name)."""
        names = self.PARTS.get(name, (name,))
        modules = [m for m in (getattr(self, n, None) for n in names) if isinstance(m, nn.Module)]
        if not modules:
            raise KeyError(name)
        return modules


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """(batch, len) ids -> (batch, len) bool, True at real tokens."""
    return ids.ne(pad_id)


def lengths_from_mask(mask: Tensor) -> Tensor:
    """(batch, len) bool -> (batch,) int64 number of real tokens (padding is at the end)."""
    return mask.sum(dim=1, dtype=torch.long)
