"""Images and vectors as the source (``data.format: images | digits``): :class:`ImageInput`.

It wraps the objective of the task and stage (translation, ``stage=encoder`` / ``decoder``) and
changes only what the source is. A split is an :mod:`~seq2seq.data.image_sources` split; each
example's source is a list of item ids, which the token batches carry as they carry token ids
(the Trainer, the batch sampler and ``collate`` are those of text); :meth:`ImageInput.loss`
replaces the ids with the items (a table on the device: row 0 padding, then the training items,
then the validation items) before the wrapped objective's loss runs. Validation decodes the
validation inputs as arrays (``Translator`` reads arrays). With ``data.digits.redraw`` each
training number's images are drawn afresh at every batch (same digits, other training images).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from seq2seq.config import Config
from seq2seq.data.batching import Batch, Example, FilterStats
from seq2seq.data.image_sources import ItemStore, ItemText, open_items
from seq2seq.data.loading import TextSource
from seq2seq.data.store import StoreExamples
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import ConfigError, DataError
from seq2seq.models import Composite
from seq2seq.train.objectives import Objective, StepLoss, ValidSums


class ImageInput(Objective):
    """``inner``'s loss and model on item inputs (see the module docstring)."""

    store_kind = "items"

    def __init__(self, cfg: Config, autocast: Optional[AbstractContextManager], inner: Optional[Objective]) -> None:
        super().__init__(cfg, autocast)
        self.inner = inner  # None: a subclass has its own loss (ImageAutoencoding)
        self.decodes = inner.decodes if inner is not None else False
        self._items: list[np.ndarray] = []  # the table's parts: padding, training items, validation items
        self._rows = 0
        self._table: Optional[torch.Tensor] = None
        self._pools: Optional[dict[int, np.ndarray]] = None  # digit -> training item ids (redraw)
        self._label_of: Optional[np.ndarray] = None  # item id -> digit

    # data
    def source(self, file: str) -> TextSource:
        return open_items(self.cfg, file)

    def load(self, file: str) -> ItemText:  # type: ignore[override]
        return open_items(self.cfg, file).text()

    def tokenizer_texts(self, train: TextSource) -> tuple[Iterable[str], Iterable[str]]:
        """The targets only (the source side has no text; a separate source model is trained on them too)."""
        return train.texts("tgt"), ([] if self.cfg.tokenizer.joint else train.texts("tgt"))

    def prepare(self, train: Any, resumed: Optional[Path] = None) -> None:
        """The item table starts with the training items; ``model.item_shape`` is theirs."""
        assert isinstance(train, ItemStore)
        data, m = train.data, self.cfg.model
        shape = tuple(data.items.shape[1:])
        if m.item_shape and tuple(m.item_shape) != shape:
            raise ConfigError(
                f"model.item_shape is {list(m.item_shape)}, but {train.name} holds items of shape {list(shape)}: "
                f"set model.item_shape to {list(shape)} or leave it empty"
            )
        m.item_shape = list(shape)
        self._items = [np.zeros((1, *shape), dtype=np.float32), data.items]
        self._rows, self._table = 1 + len(data.items), None
        if self.cfg.data.format == "digits" and self.cfg.data.digits.redraw and data.labels is not None:
            self._label_of = np.concatenate([[-1], data.labels])
            self._pools = {int(c): 1 + np.flatnonzero(data.labels == c) for c in np.unique(data.labels)}

    def select(self, train: Any) -> tuple[StoreExamples, FilterStats]:
        """Examples with a target of 1 to ``data.max_tgt_tokens`` tokens and at most
        ``data.max_src_tokens`` items."""
        d = self.cfg.data
        src, tgt = train.src_lengths, train.tgt_lengths
        empty = (src == 0) | (tgt == 0)
        too_long = ~empty & ((src > d.max_src_tokens) | (tgt > d.max_tgt_tokens))
        rows = np.flatnonzero(~empty & ~too_long)
        return StoreExamples(train, rows), FilterStats(len(rows), int(empty.sum()), int(too_long.sum()), train.size)

    def encode(self, text: Any, tokenizers: TokenizerPair, drop: bool) -> tuple[list[Example], FilterStats]:
        """A split in memory (validation): its items join the table; every example is kept."""
        shape = tuple(self._items[0].shape[1:])
        targets = tokenizers.tgt.encode_batch(text.tgt)
        examples = []
        for i, (items, tgt) in enumerate(zip(text.src, targets)):
            items = np.asarray(items, dtype=np.float32)
            if tuple(items.shape[1:]) != shape:
                raise DataError(f"{text.name}: input {i + 1} has items of shape {items.shape[1:]}, not {shape}")
            examples.append(Example(i, list(range(self._rows, self._rows + len(items))), tgt))
            self._items.append(items)
            self._rows += len(items)
        self._table = None
        return examples, FilterStats(len(examples), 0, 0, len(examples))

    def noise(self, examples: list[Example], epoch: int, batch_number: int) -> list[Example]:
        """``data.digits.redraw``: each item another training image of the same digit; depends only on
        (seed, epoch, batch), as a resumed run needs."""
        if self._pools is None or self._label_of is None:
            return examples
        rng = np.random.default_rng([self.cfg.train.seed, epoch, batch_number, 7])
        out = []
        for e in examples:
            pools = [self._pools[int(self._label_of[i])] for i in e.src]
            out.append(Example(e.index, [int(p[rng.integers(len(p))]) for p in pools], e.tgt))
        return out

    def with_items(self, batch: Batch) -> Batch:
        """``batch`` with its item ids (B, S) replaced by the items (B, S, *item_shape)."""
        device = batch.src.device
        if self._table is None or self._table.device != device:
            self._table = torch.from_numpy(np.concatenate(self._items)).to(device)
        return dataclasses.replace(batch, src=self._table[batch.src])

    # model, loss and reports: the wrapped objective's
    def build_model(self, tokenizers: TokenizerPair) -> Composite:
        return self.inner.build_model(tokenizers)

    def describe(self, model: Composite) -> str:
        m = self.cfg.model
        over = "" if m.item_sequence == "none" else f" + {m.item_sequence} over the items"
        return f"{m.encoder} encoder of {'x'.join(map(str, m.item_shape))} items{over} + {m.decoder} decoder"

    def checkpoint_extra(self) -> dict[str, Any]:
        return self.inner.checkpoint_extra()

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        return self.inner.loss(model, self.with_items(batch), label_smoothing, step)

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        return self.inner.valid_metrics(sums)

    def log_extra(self, kl_sum: float, sentences: int, step: int) -> dict[str, float]:
        return self.inner.log_extra(kl_sum, sentences, step)
