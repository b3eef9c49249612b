"""Image autoencoders through ``seq2seq train``: :class:`ImageAutoencoding`.

``task: autoencoder`` with ``model.encoder`` cnn or mlp and ``model.decoder: image``: each
example is one image (or vector) of ``data.format`` images (``PREFIX.npy`` or a list of image
files, no targets) or digits (every image of the split once), and the model is a
:class:`~seq2seq.models.vision.VectorAutoencoder`: the encoder's code (``context_dim``, through
``model.bottleneck``) -> the MSE image head. The loss is the mean squared error per pixel
against the *clean* image, summed over the batch's images (the step divides by their number).

- denoising: ``autoencoder.image_noise`` (gaussian or masking, ``image_noise_level``) corrupts
  the input; the noise depends only on (seed, epoch, batch), so a resumed run sees the same;
  validation noises its inputs too, with seeds fixed per batch, so its figure is comparable
  from one validation to the next;
- super-resolution: ``model.downsample`` k > 1, the encoder reads the image mean-pooled k x k
  (the model pools it), the target is the full image.

The batches are the item batches of :class:`~seq2seq.train.item_objective.ImageInput` (item ids
in place of token ids, the target a placeholder token). The run's SentencePiece model is a
placeholder too (a character model of the word "image"): checkpoints always hold one.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Optional

import numpy as np
import torch

from seq2seq.config import Config, TokenizerConfig
from seq2seq.data.batching import Batch, Example, FilterStats
from seq2seq.data.image_sources import ItemText, open_images
from seq2seq.data.loading import TextSource
from seq2seq.data.store import StoreExamples
from seq2seq.data.tokenizer import UNK_ID, TokenizerPair
from seq2seq.errors import ConfigError
from seq2seq.models import Composite
from seq2seq.models.vision import VectorAutoencoder, build_image_autoencoder, corrupt, mse_loss
from seq2seq.train.freeze import frozen, no_grad_if
from seq2seq.train.item_objective import ImageInput
from seq2seq.train.objectives import StepLoss, ValidSums
from seq2seq.train.schedules import kl_weight

PLACEHOLDER_TEXT = "image"


class ImageAutoencoding(ImageInput):
    """Images in, the same images out, MSE (see the module docstring)."""

    store_kind = "images"

    def __init__(self, cfg: Config, autocast: Optional[AbstractContextManager] = None) -> None:
        super().__init__(cfg, autocast, None)
        # No text anywhere: the checkpoint's tokenizer is a placeholder character model.
        cfg.tokenizer = TokenizerConfig(model_type="char", vocab_size=16)
        self._noise_seed: Optional[list[int]] = None

    # data: one image per example, no targets
    def source(self, file: str) -> TextSource:
        return open_images(self.cfg, file)

    def load(self, file: str) -> ItemText:  # type: ignore[override]
        return open_images(self.cfg, file).text()

    def tokenizer_texts(self, train: TextSource) -> tuple[Iterable[str], Iterable[str]]:
        return [PLACEHOLDER_TEXT], []

    def prepare(self, train: Any, resumed: Any = None) -> None:
        super().prepare(train, resumed)
        self._pools = self._label_of = None  # every image is its own target: no redraw

    def select(self, train: Any) -> tuple[StoreExamples, FilterStats]:
        rows = np.flatnonzero(train.src_lengths == 1)
        empty = int(train.size - len(rows))
        return StoreExamples(train, rows), FilterStats(len(rows), empty, 0, train.size)

    def encode(self, text: Any, tokenizers: TokenizerPair, drop: bool) -> tuple[list[Example], FilterStats]:
        examples, stats = super().encode(text, tokenizers, drop)
        return [Example(e.index, e.src, [UNK_ID]) for e in examples], stats  # a placeholder target token

    def noise(self, examples: list[Example], epoch: int, batch_number: int) -> list[Example]:
        self._noise_seed = [self.cfg.train.seed, epoch, batch_number, 11]
        return examples

    # model
    def build_model(self, tokenizers: TokenizerPair) -> Composite:
        try:
            return build_image_autoencoder(self.cfg.model)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None

    def describe(self, model: Composite) -> str:
        m, a = self.cfg.model, self.cfg.autoencoder
        shape = "x".join(map(str, m.item_shape))
        parts = [f"{m.encoder} encoder of {shape} images -> code of {m.context_dim or m.d_model}"]
        if m.bottleneck != "plain":
            parts.append(f"({m.bottleneck})")
        parts.append(f"-> image head ({m.image_output} pixels, MSE)")
        if a.image_noise != "none":
            parts.append(f"; denoising: {a.image_noise} {a.image_noise_level:g}")
        if m.downsample > 1:
            parts.append(f"; super-resolution from {m.downsample}x{m.downsample} mean-pooled inputs")
        return " ".join(parts).replace(" ;", ";")

    def checkpoint_extra(self) -> dict[str, Any]:
        return {}

    # loss
    def noised(self, images: torch.Tensor, training: bool, batch: Batch) -> torch.Tensor:
        """``images`` (B, 1, *shape) with ``autoencoder.image_noise``: seeded by the batch's place in
        training, by its first example at validation."""
        a = self.cfg.autoencoder
        if a.image_noise == "none":
            return images
        seed = (
            self._noise_seed
            if training and self._noise_seed is not None
            else [self.cfg.train.seed, batch.indices[0], 13]
        )
        g = torch.Generator(device=images.device).manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        return corrupt(images, a.image_noise, a.image_noise_level, g)

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        assert isinstance(model, VectorAutoencoder)
        images = self.with_items(batch).src  # (B, 1, *shape)
        inputs = self.noised(images, model.training, batch)
        with self.autocast:
            with no_grad_if(frozen(model.part("encoder"))):
                z, kl = model.code(inputs, batch.src_mask)
            out = model.decoder(z)
        mse = mse_loss(out, images[:, 0]).sum()  # per-pixel MSE, summed over the images
        result = StepLoss(mse, mse.detach(), len(images))
        if kl is not None:
            a = self.cfg.autoencoder
            result.kl = kl.sum()
            result.loss = mse + kl_weight(step, a.kl_schedule, a.kl_anneal_steps, a.kl_weight) * result.kl
        return result

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        """``valid_loss``: the mean squared error per pixel (of the noised or pooled inputs' reconstruction)."""
        result = {"valid_loss": sums.nll / max(1, sums.terms)}
        if self.cfg.model.bottleneck == "variational":
            result["valid_kl"] = sums.kl / max(1, sums.rows)
        return result

    def log_extra(self, kl_sum: float, sentences: int, step: int) -> dict[str, float]:
        return {}
