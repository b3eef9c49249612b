"""What a run optimises: one :class:`Objective` per case, chosen once from the config.

=====================  ==============================================================
objective              loss on a batch
=====================  ==============================================================
``Translation``        label-smoothed NLL of the target tokens given the source
``Autoencoding``       the same with the sentence as target, plus input noise, word
                       dropout on the decoder's inputs and a variational KL term
``Classification``     cross-entropy of the label (``batch.tgt_out[:, 0]``)
``EncoderStage``       the context-target loss of the encoder's interface vector
``DecoderStage``       NLL of the target tokens given the context-target vectors
``ImageInput``         any of the above with images or vectors as the source
                       (``item_objective.py``)
``ImageAutoencoding``  MSE of an image against itself (denoising, super-resolution;
                       ``image_autoencoder.py``)
=====================  ==============================================================

An objective also knows what its data looks like (how a split is loaded and encoded, which
texts train SentencePiece, which model it trains) and what its validation reports. A new case
is one new class here and one line in :func:`choose_objective`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from seq2seq.checkpoint import verify_checkpoint
from seq2seq.config import Config
from seq2seq.data.batching import Batch, Example, FilterStats, encode_labelled, encode_pairs
from seq2seq.data.loading import (
    ParallelText,
    TextSource,
    load_labelled,
    load_monolingual,
    load_parallel,
    open_labelled,
    open_monolingual,
    open_parallel,
)
from seq2seq.data.noise import add_noise, word_dropout
from seq2seq.data.store import CorpusMix, StoreExamples, TokenStore, select_labelled, select_pairs
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TokenizerPair
from seq2seq.errors import ConfigError, DataError, Seq2SeqError
from seq2seq.models import Classifier, Composite, build_classifier, build_model
from seq2seq.models.bow import bag_of_words_nll, start_from_unigram, target_counts
from seq2seq.train.adversarial import adversarial_step, perturb_embeddings
from seq2seq.train.freeze import frozen, no_grad_if
from seq2seq.train.losses import label_smoothed_nll
from seq2seq.train.schedules import kl_weight

log = logging.getLogger("seq2seq.train")

ATTENTION_WARNING = (
    "model.attention=%s in an autoencoder: the decoder can copy the input through attention, so "
    "the context vector need not learn anything. Set model.attention=none (the default for "
    "task=autoencoder) unless that is what you want."
)


@dataclass
class StepLoss:
    """What one forward pass gives the loop; every sum runs over ``n`` terms."""

    loss: torch.Tensor  # the objective (sum)
    nll: torch.Tensor  # its plain negative log-likelihood part (sum)
    n: int  # target tokens (or sentences for a classifier, context blocks for stage=encoder)
    correct: Optional[torch.Tensor] = None  # (B,) bool per sentence (classifier, stage=encoder)
    kl: Optional[torch.Tensor] = None  # KL sum of a variational bottleneck (nats, over sentences)


@dataclass
class ValidSums:
    """Sums of :class:`StepLoss` over the validation batches."""

    nll: float = 0.0
    terms: int = 0
    correct: int = 0
    rows: int = 0
    kl: float = 0.0

    def add(self, out: StepLoss, rows: int) -> None:
        self.nll += float(out.nll)
        self.terms += out.n
        self.rows += rows
        if out.correct is not None:
            self.correct += int(out.correct.sum())
        if out.kl is not None:
            self.kl += float(out.kl)


# ----------------------------------------------------------------- objectives
class Objective:
    """One training case: its data, its model, its loss and what validation reports.

    ``autocast`` wraps the model's forward computations (bf16 autocast or nothing); the losses
    themselves are computed outside it, in fp32.
    """

    #: validation also decodes the validation sources (greedy) for chrF / BLEU / exact match
    decodes = False
    #: what the training split's token store holds (see :mod:`seq2seq.data.store`)
    store_kind = "pairs"

    def __init__(self, cfg: Config, autocast: Optional[AbstractContextManager] = None) -> None:
        self.cfg = cfg
        self.autocast = autocast if autocast is not None else nullcontext()
        self.bow_counts: Optional[np.ndarray] = None  # target token counts (model.decoder bow)

    # data
    def prepare(self, train: TokenStore | CorpusMix, resumed: Optional[Path] = None) -> None:
        """Learn what the objective needs from the training data before training starts
        (``resumed``: the checkpoint a resumed run continues, whose choices stand)."""
        if self.cfg.model.decoder == "bow" and resumed is None:  # for its head's initial bias
            self.bow_counts = target_counts(train)

    def source(self, file: str) -> TextSource:
        """One split, streamed (the training data, ``data.train``)."""
        return open_parallel(self.cfg.data, file)

    def load(self, file: str) -> ParallelText:
        """One split in memory (``data.valid``)."""
        return load_parallel(self.cfg.data, file)

    def tokenizer_texts(self, train: TextSource) -> tuple[Iterable[str], Iterable[str]]:
        """The (source, target) sentences SentencePiece is trained on, streamed."""
        return train.texts("src"), train.texts("tgt")

    def encode(self, text: ParallelText, tokenizers: TokenizerPair, drop: bool) -> tuple[list[Example], FilterStats]:
        """Token ids of a split in memory; ``drop``: filter by the length limits."""
        d = self.cfg.data
        return encode_pairs(
            text, tokenizers, d.max_src_tokens, d.max_tgt_tokens, d.min_tokens if drop else 0, drop=drop
        )

    def select(self, train: TokenStore | CorpusMix) -> tuple[StoreExamples, FilterStats]:
        """The training examples: the store's rows within the length limits (the rows
        :meth:`encode` keeps with ``drop=True``)."""
        d = self.cfg.data
        chosen = select_pairs(train, d.max_src_tokens, d.max_tgt_tokens, d.min_tokens)
        stats = FilterStats(len(chosen.rows), chosen.empty, chosen.too_long, train.size, too_short=chosen.too_short)
        return StoreExamples(train, chosen.rows), stats

    def noise(self, examples: list[Example], epoch: int, batch_number: int) -> list[Example]:
        """The examples as trained on (noisy sources for a denoising autoencoder)."""
        return examples

    # model
    def build_model(self, tokenizers: TokenizerPair) -> Composite:
        try:
            model = build_model(self.cfg.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size, PAD_ID)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        if self.bow_counts is not None:
            start_from_unigram(model.decoder, self.bow_counts, (PAD_ID, UNK_ID, BOS_ID, EOS_ID))
        return model

    def describe(self, model: Composite) -> str:
        m = self.cfg.model
        return f"{m.encoder} encoder + {m.decoder} decoder (attention {m.attention})"

    def checkpoint_extra(self) -> dict[str, Any]:
        """What checkpoints of this run record beside the weights."""
        return {}

    # loss and validation
    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        """The loss on one batch (sums, see :class:`StepLoss`); ``step`` is the update number."""
        raise NotImplementedError

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        """``valid_loss`` (per term) and the case's own figures, from the validation sums."""
        loss = sums.nll / max(1, sums.terms)
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50.0))}

    def log_extra(self, kl_sum: float, sentences: int, step: int) -> dict[str, float]:
        """Figures of the case's own for a training log line."""
        return {}

    def _token_loss(self, logits: torch.Tensor, batch: Batch, label_smoothing: float) -> StepLoss:
        if logits.dim() == 2:  # model.decoder bow: one distribution per sentence (models/bow.py)
            loss, nll, n = bag_of_words_nll(logits, batch.tgt_out, label_smoothing, (PAD_ID, EOS_ID))
            return StepLoss(loss, nll, n)
        loss, nll, n = label_smoothed_nll(logits, batch.tgt_out, label_smoothing, PAD_ID)
        return StepLoss(loss, nll, n)


class Translation(Objective):
    """Source -> target; a frozen encoder runs without autograd."""

    decodes = True

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        with self.autocast:
            with no_grad_if(frozen(model.part("encoder"))):
                encoded = model.encode(batch.src, batch.src_mask)
            logits = model.decoder(self.decoder_input(batch, model), encoded)
        out = self._token_loss(logits, batch, label_smoothing)
        if encoded.kl is not None:  # a variational bottleneck
            out.kl = encoded.kl.sum()
            out.loss = out.loss + self.kl_weight(step) * out.kl
        return out

    def decoder_input(self, batch: Batch, model: Composite) -> torch.Tensor:
        return batch.tgt_in

    def kl_weight(self, step: int) -> float:
        a = self.cfg.autoencoder
        return kl_weight(step, a.kl_schedule, a.kl_anneal_steps, a.kl_weight)


class Autoencoding(Translation):
    """The sentence is its own target: denoising (noise on the input only), word dropout on the
    decoder's inputs, and for a variational bottleneck the annealed KL term."""

    store_kind = "monolingual"

    def source(self, file: str) -> TextSource:
        return open_monolingual(self.cfg.data, file)

    def load(self, file: str) -> ParallelText:
        return load_monolingual(self.cfg.data, file)

    def tokenizer_texts(self, train: TextSource) -> tuple[Iterable[str], Iterable[str]]:
        return train.texts("src"), []  # one language: train on the sentences only

    def noise(self, examples: list[Example], epoch: int, batch_number: int) -> list[Example]:
        """Noisy sources, clean targets. The noise depends only on (seed, epoch, batch), so a
        resumed run sees the same noise."""
        a = self.cfg.autoencoder
        if not (a.drop or a.mask or a.shuffle):
            return examples
        rng = np.random.default_rng([self.cfg.train.seed, epoch, batch_number])
        return [
            Example(e.index, add_noise(e.src, rng, a.drop, a.mask, a.shuffle, a.shuffle_distance, UNK_ID), e.tgt)
            for e in examples
        ]

    def build_model(self, tokenizers: TokenizerPair) -> Composite:
        if self.cfg.model.attention != "none":
            log.warning(ATTENTION_WARNING, self.cfg.model.attention)
        return super().build_model(tokenizers)

    def decoder_input(self, batch: Batch, model: Composite) -> torch.Tensor:
        if not model.training:
            return batch.tgt_in
        return word_dropout(batch.tgt_in, self.cfg.autoencoder.word_dropout, UNK_ID, (PAD_ID, BOS_ID))

    @property
    def variational(self) -> bool:
        return self.cfg.model.bottleneck == "variational"

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        result = super().valid_metrics(sums)
        if self.variational:
            result["valid_kl"] = sums.kl / max(1, sums.rows)  # nats per sentence
        return result

    def log_extra(self, kl_sum: float, sentences: int, step: int) -> dict[str, float]:
        if not self.variational:
            return {}
        return {"kl": kl_sum / max(1, sentences), "kl_weight": self.kl_weight(step)}  # KL in nats per sentence


class Classification(Objective):
    """Sentence -> label. The labels are the sorted set of the training labels (numerically
    when all are integers); checkpoints record them."""

    store_kind = "labelled"

    def __init__(self, cfg: Config, autocast: Optional[AbstractContextManager] = None) -> None:
        super().__init__(cfg, autocast)
        self.labels: list[str] = []  # label texts, index = class id

    def prepare(self, train: TokenStore | CorpusMix, resumed: Optional[Path] = None) -> None:
        """The label set: a resumed run's, else the training labels."""
        if resumed is not None:
            self.labels = list(verify_checkpoint(resumed)["labels"])
            return
        labels = sorted(set(train.labels), key=lambda x: (0, int(x), x) if x.lstrip("-").isdigit() else (1, 0, x))
        if len(labels) < 2:
            raise Seq2SeqError(f"{train.name}: a classifier needs at least two labels, found {labels}")
        self.labels = labels

    def source(self, file: str) -> TextSource:
        return open_labelled(self.cfg.data, file)

    def load(self, file: str) -> ParallelText:
        return load_labelled(self.cfg.data, file)

    def tokenizer_texts(self, train: TextSource) -> tuple[Iterable[str], Iterable[str]]:
        return train.texts("src"), []

    def encode(self, text: ParallelText, tokenizers: TokenizerPair, drop: bool) -> tuple[list[Example], FilterStats]:
        label_ids = {label: i for i, label in enumerate(self.labels)}
        return encode_labelled(text, tokenizers.src, label_ids, self.cfg.data.max_src_tokens, drop=drop)

    def select(self, train: TokenStore | CorpusMix) -> tuple[StoreExamples, FilterStats]:
        ids = {label: i for i, label in enumerate(self.labels)}
        unknown = [k for k, label in enumerate(train.labels) if label not in ids]
        if unknown and train.label_ids is not None:
            row = int(np.flatnonzero(np.isin(train.label_ids, unknown))[0])
            raise DataError(
                f"{train.name}: example {row + 1} has the label '{train.labels[train.label_ids[row]]}', "
                f"unknown to the training data (labels: {', '.join(sorted(ids))})"
            )
        chosen = select_labelled(train, self.cfg.data.max_src_tokens)
        stats = FilterStats(len(chosen.rows), chosen.empty, chosen.too_long, train.size)
        return StoreExamples(train, chosen.rows, [ids[label] for label in train.labels]), stats

    def build_model(self, tokenizers: TokenizerPair) -> Composite:
        if self.cfg.train.init_decoder:
            raise ConfigError("train.init_decoder: a classifier has no decoder (use train.init_encoder)")
        try:
            return build_classifier(self.cfg.model, tokenizers.src.vocab_size, len(self.labels), PAD_ID)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None

    def describe(self, model: Composite) -> str:
        return f"{self.cfg.model.encoder} encoder + classifier head ({len(self.labels)} labels)"

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        assert isinstance(model, Classifier)
        eps = self.cfg.train.adversarial_eps
        captured: list[torch.Tensor] = []
        adversarial_run = eps > 0 and model.training and torch.is_grad_enabled()
        with perturb_embeddings(model.encoder.embedding, capture=captured) if adversarial_run else nullcontext():
            logits = self._logits(model, batch)  # (B, 1, labels)
        labels = batch.tgt_out[:, :1]  # (B, 1)
        loss, nll, n = label_smoothed_nll(logits, labels, label_smoothing, -1)
        if captured:  # training with adversarial_eps: the same batch again, each sentence pushed up its loss
            # The direction from plain autograd: label_smoothed_nll's own backward reuses its saved
            # tensors in place, so its graph cannot be walked twice.
            direction_loss = F.cross_entropy(logits[:, 0].float(), labels[:, 0], reduction="sum")
            (grad,) = torch.autograd.grad(direction_loss, captured[0], retain_graph=True)
            push = adversarial_step(grad, captured[0], batch.src_mask, eps)  # (B, S, d)
            with perturb_embeddings(model.encoder.embedding, add=push):
                adversarial, _, _ = label_smoothed_nll(self._logits(model, batch), labels, label_smoothing, -1)
            loss = loss + adversarial
        return StepLoss(loss, nll, n, correct=logits[:, 0].argmax(-1).eq(labels[:, 0]))

    def _logits(self, model: Classifier, batch: Batch) -> torch.Tensor:
        """(B, 1, labels)"""
        with self.autocast:
            with no_grad_if(frozen(model.part("encoder"))):
                features = model.head_input(batch.src, batch.src_mask)
            return model.head(features).unsqueeze(1)

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        return {"valid_loss": sums.nll / max(1, sums.terms), "valid_accuracy": 100.0 * sums.correct / max(1, sums.rows)}


class EncoderStage(Objective):
    """Staged training, first half: the encoder learns to produce the given context vectors
    (``data.context_targets``); the decoder is frozen and never run."""

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        with self.autocast:
            raw = model.to_interface(model.encoder(batch.src, batch.src_mask))
            loss, n, correct = model.context_target.loss_sum(raw, batch.context)
        return StepLoss(loss, loss.detach(), n, correct=correct)

    def valid_metrics(self, sums: ValidSums) -> dict[str, float]:
        return {
            "valid_loss": sums.nll / max(1, sums.terms),
            "valid_context_accuracy": 100.0 * sums.correct / max(1, sums.rows),
        }


class DecoderStage(Objective):
    """Staged training, second half: the decoder generates the target from the given context
    vectors; the encoder is frozen and never run."""

    def loss(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        with self.autocast:
            encoded = model.from_interface(batch.context.to(next(model.parameters()).dtype))
            logits = model.decoder(batch.tgt_in, encoded)
        return self._token_loss(logits, batch, label_smoothing)


def choose_objective(cfg: Config, autocast: Optional[AbstractContextManager] = None) -> Objective:
    """The objective of ``cfg.task`` and ``cfg.train.stage``."""
    stage = cfg.train.stage
    kind: Callable[..., Objective]
    if cfg.task == "classification":
        kind = Classification
    elif stage == "encoder":
        kind = EncoderStage
    elif stage == "decoder":
        kind = DecoderStage
    elif cfg.task == "autoencoder":
        kind = Autoencoding
    else:
        kind = Translation
    if cfg.model.decoder == "image":  # images in, images out (image_autoencoder.py)
        from seq2seq.train.image_autoencoder import ImageAutoencoding

        return ImageAutoencoding(cfg, autocast)
    if cfg.model.encoder in ("cnn", "mlp"):  # images or vectors in: the same loss on items
        from seq2seq.train.item_objective import ImageInput

        return ImageInput(cfg, autocast, kind(cfg, autocast))
    return kind(cfg, autocast)
