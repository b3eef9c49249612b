"""Decoding image and vector inputs: what :class:`~seq2seq.infer.translator.Translator` does
when its model's encoder reads items (``model.encoder`` cnn / mlp) rather than tokens.

An input is one item (``item_shape``: an image (H, W) or (C, H, W), a vector (D,)) or a sequence
of them (S, *item_shape); a whole batch may come as one array (N, *item_shape) or
(N, S, *item_shape). Inputs are sorted by their number of items into batches of at most
``batch_rows`` hypotheses, padded, and searched as token sources are; the maximum output length
is ``max_len_a * items + max_len_b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from seq2seq.errors import DataError
from seq2seq.infer.search import generate
from seq2seq.infer.sources import length_batches

ItemInputs = Union[np.ndarray, Sequence[Any]]


def item_sequences(inputs: ItemInputs, item_shape: tuple[int, ...], name: str = "input") -> list[np.ndarray]:
    """``inputs`` as a list of float32 arrays (S, *item_shape), checked: shapes and finite values;
    errors name ``name`` and the input's index (from 0)."""
    shape = tuple(item_shape)
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fiub":
        if tuple(inputs.shape[1:]) == shape:
            inputs = inputs[:, None]
        elif tuple(inputs.shape[2:]) != shape or inputs.ndim != len(shape) + 2:
            want = ", ".join(map(str, shape))
            raise DataError(
                f"{name}: expected an array of shape (N, {want}) or (N, S, {want}), got {tuple(inputs.shape)}"
            )
    out = []
    for i, x in enumerate(inputs):
        try:
            a = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{name} {i}: not an array of numbers ({type(x).__name__})") from None
        if a.shape == shape:
            a = a[None]
        if tuple(a.shape[1:]) != shape:
            raise DataError(f"{name} {i}: expected an item of shape {shape} or a sequence (S, *{shape}), got {a.shape}")
        if not np.isfinite(a).all():
            raise DataError(f"{name} {i}: NaN or infinite values")
        out.append(a)
    return out


class ReadsItems:
    """``item_shape`` / ``reads_items`` of an inference class holding ``model``: whether its
    encoder reads items (images, vectors) rather than tokens."""

    model: Any
    device: torch.device

    @property
    def item_shape(self) -> Optional[tuple[int, ...]]:
        """The shape of one item the encoder reads; None for a token encoder."""
        shape = getattr(getattr(self.model, "encoder", None), "item_shape", None)
        return tuple(shape) if shape is not None else None

    @property
    def reads_items(self) -> bool:
        return self.item_shape is not None


class ItemInputMixin(ReadsItems):
    """:meth:`item_hypotheses` for a :class:`~seq2seq.infer.translator.Translator` whose model reads items."""

    @torch.inference_mode()
    def item_hypotheses(
        self,
        inputs: ItemInputs,
        beam: Optional[int] = None,
        nbest: int = 1,
        batch_rows: Optional[int] = None,
        progress: bool = False,
        name: str = "input",
    ) -> list[list[tuple[str, float]]]:
        """Up to ``nbest`` (text, score) pairs per input, best first, in input order (an input of no
        items: ("", 0.0))."""
        if self.item_shape is None:
            raise DataError("this model reads text: give it lines, not arrays")
        spec = self._spec(beam, nbest)  # type: ignore[attr-defined]
        arrays = item_sequences(inputs, self.item_shape, name)
        self.model.eval()
        decode = self.tokenizers.tgt.decode  # type: ignore[attr-defined]
        results: list[list[tuple[str, float]]] = [[("", 0.0)] for _ in arrays]
        sizes = [[0] * len(a) for a in arrays]
        rows = max(1, (batch_rows or self.search.batch_rows) // spec.beam)  # type: ignore[attr-defined]
        batches = list(length_batches(sizes, 1 << 30, rows))
        for positions in tqdm(batches, desc="translate", unit="batch", leave=False, disable=None if progress else True):
            width = max(len(arrays[i]) for i in positions)
            src = np.zeros((len(positions), width, *self.item_shape), dtype=np.float32)
            mask = np.zeros((len(positions), width), dtype=bool)
            for row, i in enumerate(positions):
                src[row, : len(arrays[i])] = arrays[i]
                mask[row, : len(arrays[i])] = True
            dtype = next(self.model.parameters()).dtype
            x = torch.from_numpy(src).to(self.device, dtype)
            hyps = generate(self.model, x, torch.from_numpy(mask).to(self.device), spec)
            for i, sentence in zip(positions, hyps):
                results[i] = [(decode(h.tokens), h.score) for h in sentence] or [("", -float("inf"))]
        return results

    def translate_items(self, inputs: ItemInputs, beam: Optional[int] = None, progress: bool = False) -> list[str]:
        """One text per input (see :meth:`item_hypotheses`)."""
        return [h[0][0] for h in self.item_hypotheses(inputs, beam=beam, progress=progress)]
