"""What :class:`~seq2seq.infer.autoencoder.Autoencoder` does with images and vectors: its
methods take arrays when the checkpoint's encoder reads items (``model.encoder`` cnn / mlp).

- ``encode`` -> (N, context_dim) codes, ``codes`` -> (N, bits) bits: any such checkpoint (an
  image autoencoder, or an image -> text model, whose inputs may be sequences of items);
- ``reconstruct`` -> (N, *image_shape) images and ``score`` -> (N,) mean squared error per
  pixel of each image's reconstruction (anomaly scores): image autoencoders
  (``model.decoder: image``).

Inputs are an array (N, *shape) or a list of arrays (shape) or (1, *shape), where shape is the
encoder's item shape or, for a super-resolution model (``model.downsample`` > 1), also the full
image shape (pooled by the model); ``score`` needs full images, to compare with. Wrong shapes and
NaN are :class:`DataError` naming ``name`` (the file) and the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from seq2seq.errors import DataError, Seq2SeqError
from seq2seq.infer.items import ItemInputs, ReadsItems, item_sequences
from seq2seq.models.vision import VectorAutoencoder, mse_loss

DEFAULT_ROWS = 512  # images per batch


class ImageAutoencoderMixin(ReadsItems):
    """The array methods of :class:`~seq2seq.infer.autoencoder.Autoencoder` (see the module docstring)."""

    @property
    def image_shape(self) -> Optional[tuple[int, ...]]:
        """The shape of the image an image autoencoder writes; None for other models."""
        return self.model.decoder.shape if isinstance(self.model, VectorAutoencoder) else None

    def _require_image_decoder(self, what: str) -> None:
        if self.image_shape is None:
            raise Seq2SeqError(
                f"{what} on images needs an image autoencoder checkpoint (model.decoder: image); this one "
                "turns images into text: use 'seq2seq translate' (or encode, for its context vectors)"
            )

    def _arrays(self, inputs: ItemInputs, name: str, full: bool = False) -> list[np.ndarray]:
        """``inputs`` checked, each (S, *shape): the encoder's item shape, or the full image shape of
        a super-resolution model; ``full``: the full image shape only. An autoencoder's inputs are one
        image each."""
        assert self.item_shape is not None
        shapes = [self.item_shape]
        if self.image_shape is not None and self.image_shape != self.item_shape:
            shapes = [self.image_shape] if full else [self.item_shape, self.image_shape]
        first_error: Optional[DataError] = None
        for shape in shapes:
            try:
                arrays = item_sequences(inputs, shape, name)
                break
            except DataError as e:
                first_error = first_error or e
        else:
            if len(shapes) > 1:  # say both shapes
                want = " or ".join("x".join(map(str, s)) for s in shapes)
                raise DataError(f"{name}: expected images of shape {want} (one per row): {first_error}") from None
            raise first_error  # type: ignore[misc]
        if self.image_shape is not None:
            many = next((i for i, a in enumerate(arrays) if len(a) != 1), None)
            if many is not None:
                raise DataError(
                    f"{name} {many}: an image autoencoder reads one image per input, got a sequence of "
                    f"{len(arrays[many])}"
                )
        return arrays

    def _item_batches(
        self, arrays: list[np.ndarray], progress: bool, desc: str, rows: Optional[int] = None
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(positions, src (B, S, *shape), src_mask (B, S)) batches of ``rows`` inputs, in order."""
        rows = rows or DEFAULT_ROWS
        dtype = next(self.model.parameters()).dtype
        starts = range(0, len(arrays), rows)
        for start in tqdm(starts, desc=desc, unit="batch", leave=False, disable=None if progress else True):
            positions = list(range(start, min(start + rows, len(arrays))))
            width = max(1, max(len(arrays[i]) for i in positions))
            shape = arrays[positions[0]].shape[1:]
            src = np.zeros((len(positions), width, *shape), dtype=np.float32)
            mask = np.zeros((len(positions), width), dtype=bool)
            for row, i in enumerate(positions):
                src[row, : len(arrays[i])] = arrays[i]
                mask[row, : len(arrays[i])] = True
            yield positions, torch.from_numpy(src).to(self.device, dtype), torch.from_numpy(mask).to(self.device)

    def _context(self, src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder's context vector, before any bottleneck."""
        if isinstance(self.model, VectorAutoencoder):
            return self.model.encoder(self.model.inputs(src), mask).context
        return self.model.encoder(src, mask).context

    @torch.inference_mode()
    def encode_items(self, inputs: ItemInputs, progress: bool = False, name: str = "input") -> np.ndarray:
        """(N, context_dim) float32 codes (mu of a variational bottleneck, probabilities of a binary one)."""
        arrays = self._arrays(inputs, name)
        self.model.eval()
        out = np.zeros((len(arrays), self.model.encoder.context_dim), dtype=np.float32)
        for positions, src, mask in self._item_batches(arrays, progress, "encode"):
            out[positions] = self.model.context_vectors(src, mask).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def codes_items(self, inputs: ItemInputs, progress: bool = False, name: str = "input") -> np.ndarray:
        """(N, bits) bool binary codes (``model.bottleneck: binary``)."""
        self._require("binary")  # type: ignore[attr-defined]
        arrays = self._arrays(inputs, name)
        self.model.eval()
        out = np.zeros((len(arrays), self.model.encoder.context_dim), dtype=bool)
        for positions, src, mask in self._item_batches(arrays, progress, "hash"):
            out[positions] = self.model.bottleneck.bits(self._context(src, mask)).cpu().numpy()
        return out

    @torch.inference_mode()
    def reconstruct_items(self, inputs: ItemInputs, progress: bool = False, name: str = "input") -> np.ndarray:
        """(N, *image_shape) float32: each image through the code and the image head."""
        self._require_image_decoder("reconstruct")
        arrays = self._arrays(inputs, name)
        self.model.eval()
        out = np.zeros((len(arrays), *self.image_shape), dtype=np.float32)  # type: ignore[misc]
        for positions, src, mask in self._item_batches(arrays, progress, "reconstruct"):
            out[positions] = self.model(src, mask).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def score_items(self, inputs: ItemInputs, progress: bool = False, name: str = "input") -> np.ndarray:
        """(N,) float64: the mean squared error per pixel between each image and its reconstruction
        (high: unlike the training images)."""
        self._require_image_decoder("score")
        arrays = self._arrays(inputs, name, full=True)
        self.model.eval()
        out = np.zeros(len(arrays), dtype=np.float64)
        for positions, src, mask in self._item_batches(arrays, progress, "score"):
            out[positions] = mse_loss(self.model(src, mask), src[:, 0]).double().cpu().numpy()
        return out
