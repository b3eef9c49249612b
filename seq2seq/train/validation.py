"""Validation: the objective's loss figures, decoded-output metrics, and which result is best."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from seq2seq.config import Config
from seq2seq.data.batching import Batch
from seq2seq.data.loading import ParallelText
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.infer.translator import Translator
from seq2seq.metrics import bleu, chrf, exact_match
from seq2seq.models import Composite
from seq2seq.train.freeze import train_mode
from seq2seq.train.objectives import Objective, ValidSums
from seq2seq.train.state import TrainState

HIGHER_IS_BETTER = {"bleu": True, "exact_match": True, "accuracy": True, "loss": False}


class Validator:
    """Scores a model on the validation set and keeps the early-stopping record in a :class:`TrainState`."""

    def __init__(
        self, cfg: Config, objective: Objective, device: torch.device, autocast: AbstractContextManager
    ) -> None:
        self.cfg = cfg
        self.objective = objective
        self.device = device
        self.autocast = autocast
        self.metric = cfg.train.early_stop_metric
        self.higher_is_better = HIGHER_IS_BETTER[self.metric]

    @torch.no_grad()
    def loss(self, model: Composite, batches: list[Batch]) -> dict[str, float]:
        """``valid_loss`` and the objective's figures (perplexity, accuracy, KL)."""
        model.eval()
        sums = ValidSums()
        for batch in batches:
            sums.add(self.objective.loss(model, batch.to(self.device), 0.0), len(batch))
        train_mode(model)
        return self.objective.valid_metrics(sums)

    def __call__(
        self, model: Composite, tokenizers: TokenizerPair, valid: ParallelText, batches: list[Batch]
    ) -> dict[str, float]:
        """:meth:`loss`, plus chrF, exact match and (when asked for) BLEU of greedy outputs for
        objectives that generate text."""
        result = self.loss(model, batches)
        t = self.cfg.train
        if not (self.objective.decodes and (t.valid_bleu or self.metric != "loss")):
            return result
        n = t.valid_max_sentences or len(valid.src)
        translator = Translator(
            model, tokenizers, self.cfg.search, self.device, self.cfg.model.max_positions, check_inputs=False
        )  # a validation set may hold rare characters: no report
        with self.autocast:
            hyps = translator.translate(valid.src[:n], beam=1)
        train_mode(model)
        refs = valid.tgt[:n]
        # BLEU only where asked for: outputs of one or two tokens (a digits model's "사천이십일")
        # have no 4-grams, so their BLEU is 0 next to 100% exact match. chrF scores them.
        if t.valid_bleu or self.metric == "bleu":
            result["valid_bleu"] = bleu(hyps, refs).score
        result["valid_chrf"] = chrf(hyps, refs).score
        result["valid_exact_match"] = exact_match(hyps, refs)
        return result

    def score(self, result: dict[str, float]) -> float:
        """The early-stopping metric of a validation result."""
        return result["valid_loss" if self.metric == "loss" else f"valid_{self.metric}"]

    def record(self, result: dict[str, float], state: TrainState) -> bool:
        """Update the best score and the patience count; returns whether ``result`` is the best
        so far. A tie on the metric (e.g. 100% exact match again) goes to the lower loss."""
        score, best = self.score(result), state.best_score
        improved = (
            best is None
            or (score > best if self.higher_is_better else score < best)
            or (score == best and result["valid_loss"] < state.best_loss)
        )
        if improved:
            state.best_score, state.best_loss, state.bad_validations = score, result["valid_loss"], 0
        else:
            state.bad_validations += 1
        return improved

    def patience_exhausted(self, state: TrainState) -> bool:
        return bool(self.cfg.train.patience and state.bad_validations >= self.cfg.train.patience)
