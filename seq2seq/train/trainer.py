"""The training loop: data, SentencePiece, model, optimisation, validation, checkpoints.

One run lives in ``train.output_dir``::

    train_log.jsonl   one JSON record per log interval, validation and skipped update
    last/             the latest checkpoint (with trainer state, for --resume)
    best/             the best checkpoint by ``train.early_stop_metric``
    step-N/           the last ``train.keep_last`` validation checkpoints

Resuming (``--resume``) restores the model, optimizer, schedule, RNG streams, and the
position inside the epoch's batch order (which depends only on the seed and the epoch), so
a run killed at any moment and resumed ends with the same parameters, bit for bit on CPU, as
one that was never interrupted. Ctrl-C (SIGINT) or SIGTERM finish the current update, save
``last/`` and stop; a second Ctrl-C aborts at once (``last/`` is still the previous save).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from seq2seq.checkpoint import (
    copy_checkpoint,
    load_part,
    load_trainer_state,
    load_weights,
    recover_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from seq2seq.config import Config, config_from_dict
from seq2seq.data.batching import (
    Batch,
    Example,
    TokenBudgetBatchSampler,
    collate,
    encode_labelled,
    encode_pairs,
)
from seq2seq.data.context_targets import load_context_targets
from seq2seq.data.domain import source_limits
from seq2seq.data.loading import (
    ParallelText,
    load_labelled,
    load_monolingual,
    load_parallel,
    resolve_path,
)
from seq2seq.data.noise import add_noise, word_dropout
from seq2seq.data.normalize import source_normalizer
from seq2seq.data.tokenizer import BOS_ID, PAD_ID, UNK_ID, TokenizerPair
from seq2seq.errors import ConfigError, Seq2SeqError
from seq2seq.infer.translator import Translator
from seq2seq.metrics import bleu, chrf, exact_match
from seq2seq.models import Classifier, Composite, Seq2SeqModel, build_classifier, build_model
from seq2seq.models.cpu_kernels import use_cpu_kernels
from seq2seq.runtime import (
    avoid_per_shape_attention_plans,
    limit_onednn_cache,
    resolve_device,
    resolve_precision,
)
from seq2seq.train.distributed import init_distributed
from seq2seq.train.losses import label_smoothed_nll
from seq2seq.train.schedules import LRSchedule, kl_weight

log = logging.getLogger("seq2seq.train")

HIGHER_IS_BETTER = {"bleu": True, "exact_match": True, "accuracy": True, "loss": False}

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
class TrainResult:
    output_dir: Path
    best_score: Optional[float]
    metric: str
    steps: int
    seconds: float


class JsonlLog:
    """Append-only JSON-lines log (one flushed line per record); ``enabled=False``: writes nothing
    (the ranks other than 0 of a distributed run). With a ``tensorboard`` directory, the numbers
    of the ``train`` and ``valid`` records also go to TensorBoard (``train/loss``, ``valid/bleu``...)."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: Optional[Path] = None) -> None:
        self.path = path
        self.enabled = enabled
        self.board = None
        if enabled and tensorboard is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard needs the tensorboard package: "
                                  "pip install tensorboard (or seq2seq[tensorboard])") from None
            self.board = SummaryWriter(str(tensorboard))

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.board is not None and record.get("event") in ("train", "valid"):
            prefix = record["event"]
            for key, value in record.items():
                if key not in ("event", "step", "epoch") and isinstance(value, (int, float)):
                    name = key[len("valid_"):] if key.startswith("valid_") else key
                    self.board.add_scalar(f"{prefix}/{name}", value, record["step"])
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def truncate_after(self, step: int) -> None:
        """On resume: drop the records of updates after ``step`` (the resumed run writes them
        again) and a last line cut short by a crash; the file is replaced atomically."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


# Settings that may change on --resume without changing where the run goes.
FREE_ON_RESUME = {"train." + k for k in ("output_dir", "device", "threads", "max_epochs", "max_steps", "max_minutes",
                                         "valid_every", "valid_bleu", "valid_max_sentences", "patience", "keep_last",
                                         "save_every", "max_bad_updates", "log_every", "progress")} | {"search"}


def trajectory_changes(saved: Config, new: Config) -> list[str]:
    """The config keys, other than :data:`FREE_ON_RESUME`, that differ between two runs."""
    a, b = saved.to_dict(), new.to_dict()
    changed = []
    for section, values in a.items():
        if section in FREE_ON_RESUME:
            continue
        if not isinstance(values, dict):
            changed += [section] if values != b.get(section) else []
            continue
        changed += [f"{section}.{k}" for k, v in values.items()
                    if f"{section}.{k}" not in FREE_ON_RESUME and v != b.get(section, {}).get(k)]
    return changed


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def freeze_parts(model: Composite, parts: list[str]) -> None:
    """``train.freeze``: parts (``encoder``, ``decoder``; see ``Seq2SeqModel.PARTS``) or other
    submodules to keep fixed: no gradient, and they run forward-only in eval mode (no dropout)."""
    for name in parts:
        try:
            modules = model.part(name)
        except KeyError:
            raise ConfigError(f"train.freeze: the model has no part named '{name}' (try encoder or decoder)") from None
        for module in modules:
            for p in module.parameters():
                p.requires_grad_(False)


def frozen(modules: list[torch.nn.Module]) -> bool:
    """True when none of ``modules`` has a trainable parameter."""
    return not any(p.requires_grad for m in modules for p in m.parameters())


def train_mode(model: Composite) -> None:
    """``model.train()``, except that frozen parts stay in eval mode (forward only)."""
    model.train()
    for part in model.PARTS:
        modules = model.part(part)
        if frozen(modules):
            for m in modules:
                m.eval()


class Trainer:
    """Trains a model as described by a :class:`Config` (see the module docstring)."""

    def __init__(self, cfg: Config, resume: bool = False) -> None:
        limit_onednn_cache()  # before the first oneDNN kernel of a training process
        self.cfg = cfg
        self.task = cfg.task
        self.resume = resume
        self.labels: list[str] = []  # classification: label texts, index = class id
        self.source_limits: dict[str, int] = {}  # what the training sources were like (see data/domain.py)
        self.out = Path(cfg.train.output_dir)
        self.device = resolve_device(cfg.train.device)
        self.dist = init_distributed(self.device.type)  # launched by torchrun: one rank of several
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device(self.dist.device)
            torch.cuda.set_device(self.device)
        if self.device.type == "cuda":
            avoid_per_shape_attention_plans()
        self.metric = cfg.train.early_stop_metric
        precision = resolve_precision(cfg.train.precision, self.device)
        self.autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else nullcontext()
        )
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)

    # ----------------------------------------------------------------- set-up
    def _prepare_output_dir(self) -> None:
        last = self.out / "last"
        if self.resume:
            resolve_checkpoint(last)  # clear error when there is nothing to resume
            if self.dist.main:
                for stale in self.out.glob("*.tmp"):  # a copy or save cut short by a crash
                    if stale.is_dir():
                        shutil.rmtree(stale, ignore_errors=True)
                for moved in self.out.glob("*.old"):  # a swap cut short: the only complete copy
                    recover_checkpoint(moved.with_name(moved.name[: -len(".old")]))
            self.dist.barrier()
        elif last.exists() or last.with_name("last.old").exists():
            raise Seq2SeqError(
                f"{self.out} already holds a run (found {last}); resume it with --resume, "
                "or choose another train.output_dir"
            )

    def _load_data(self) -> tuple[ParallelText, Optional[ParallelText]]:
        d = self.cfg.data
        load = {"translation": load_parallel, "autoencoder": load_monolingual, "classification": load_labelled}[self.task]
        train = load(d, d.train)
        valid = load(d, d.valid) if d.valid else None
        if d.normalize != "none":  # translation only (validate() says so): the sources, as translate does
            normalize = source_normalizer(d.normalize)
            train = replace(train, src=[normalize(s) for s in train.src])
            valid = valid and replace(valid, src=[normalize(s) for s in valid.src])
        return train, valid

    def _label_set(self, train: ParallelText) -> list[str]:
        """Classification: the labels (sorted; numerically when all are integers)."""
        if self.resume:
            return list(verify_checkpoint(resolve_checkpoint(self.out / "last"))["labels"])
        labels = sorted(set(train.tgt), key=lambda x: (0, int(x), x) if x.lstrip("-").isdigit() else (1, 0, x))
        if len(labels) < 2:
            raise Seq2SeqError(f"{train.name}: a classifier needs at least two labels, found {labels}")
        return labels

    def _encode(self, text: ParallelText, tokenizers: TokenizerPair, drop: bool):
        d = self.cfg.data
        if self.task == "classification":
            label_ids = {label: i for i, label in enumerate(self.labels)}
            return encode_labelled(text, tokenizers.src, label_ids, d.max_src_tokens, drop=drop)
        return encode_pairs(text, tokenizers, d.max_src_tokens, d.max_tgt_tokens, d.min_tokens if drop else 0,
                            drop=drop)

    def _build_tokenizers(self, train: ParallelText) -> TokenizerPair:
        if self.resume:
            return TokenizerPair.load(resolve_checkpoint(self.out / "last"))
        t, tok = self.cfg.train, self.cfg.tokenizer

        def build(src_texts: list[str], tgt_texts: list[str]) -> TokenizerPair:
            if not tok.model:
                log.info("training SentencePiece (%s, vocab %d) on %d sentence pairs",
                         tok.model_type, tok.vocab_size, len(src_texts))
            return TokenizerPair.build(tok, src_texts, tgt_texts)

        # A part loaded from another checkpoint brings its side's SentencePiece model: ids must
        # mean the same tokens as when it was trained.
        given = {side: TokenizerPair.load(resolve_checkpoint(path))
                 for side, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder)) if path}
        # Autoencoders and classifiers have one language: train on the sentences only.
        tgt_texts = train.tgt if self.task == "translation" else []
        if not given:
            return build(train.src, tgt_texts)
        src = given["encoder"].src if "encoder" in given else None
        tgt = given["decoder"].tgt if "decoder" in given else None
        if tok.joint:
            for side, pair in given.items():
                if not pair.joint:
                    raise ConfigError(f"train.init_{side}: that checkpoint has separate source and target "
                                      "vocabularies; set tokenizer.joint=false")
            if src is not None and tgt is not None and src.fingerprint != tgt.fingerprint:
                raise ConfigError(
                    f"train.init_encoder ({t.init_encoder}) and train.init_decoder ({t.init_decoder}) use "
                    "different SentencePiece models, which a joint vocabulary (tokenizer.joint=true) cannot hold"
                )
            src = tgt = src or tgt
        if tok.model:
            mine = build([], [])
            for side, theirs, own in (("encoder", src, mine.src), ("decoder", tgt, mine.tgt)):
                if theirs is not None and theirs.fingerprint != own.fingerprint:
                    raise ConfigError(
                        f"train.init_{side}: the checkpoint's SentencePiece model differs from tokenizer.model "
                        f"({tok.model}); token ids would not match. Leave tokenizer.model empty to use the "
                        "checkpoint's."
                    )
            src, tgt = src or mine.src, tgt or mine.tgt
        elif src is None or tgt is None:
            built = build(train.src, tgt_texts)
            src, tgt = src or built.src, tgt or built.tgt
        return TokenizerPair(src) if tok.joint else TokenizerPair(src, tgt)

    def _build_model(self, tokenizers: TokenizerPair) -> Composite:
        t, m = self.cfg.train, self.cfg.model
        if self.task == "autoencoder" and m.attention != "none":
            log.warning(ATTENTION_WARNING, m.attention)
        try:
            if self.task == "classification":
                model: Composite = build_classifier(m, tokenizers.src.vocab_size, len(self.labels), PAD_ID)
            else:
                model = build_model(m, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size, PAD_ID)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        if self.task == "classification" and t.init_decoder:
            raise ConfigError("train.init_decoder: a classifier has no decoder (use train.init_encoder)")
        if not self.resume:
            for part, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder)):
                if path:
                    load_part(model, path, part)
                    log.info("%s initialised from %s", part, path)
        # Staged training: the half that is not trained is frozen (and never run).
        unused = {"encoder": ["decoder"], "decoder": ["encoder"]}.get(t.stage, [])
        freeze_parts(model, [*t.freeze, *unused])
        return model.to(self.device)

    def _build_optimizer(self, model: Seq2SeqModel) -> torch.optim.Optimizer:
        t = self.cfg.train
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("train.freeze leaves no trainable parameters")
        cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        kwargs: dict[str, Any] = {"lr": t.lr, "betas": tuple(t.betas), "eps": t.eps, "weight_decay": t.weight_decay}
        if self.device.type == "cuda":
            kwargs["fused"] = True
        return cls(params, **kwargs)

    def _context_targets(self, name: str, split: ParallelText) -> Optional[np.ndarray]:
        """The split's context target vectors (stages ``encoder``/``decoder``), else None."""
        if self.cfg.train.stage == "joint":
            return None
        key = "context_targets" if name == "train" else "valid_context_targets"
        path = getattr(self.cfg.data, key)
        if not path:
            raise ConfigError(f"train.stage={self.cfg.train.stage} needs data.{key} (one vector per line of {split.name})")
        return load_context_targets(resolve_path(self.cfg.data, path), len(split), self.cfg.model.context_target_dim)

    def _forward(self, model: Composite, batch: Batch, label_smoothing: float, step: int = 0) -> StepLoss:
        """The task's (and stage's) loss on one batch; see :class:`StepLoss`.

        joint: label-smoothed NLL of the target tokens (an autoencoder's variational bottleneck
        adds the annealed KL term, and its decoder inputs get word dropout while training);
        a frozen encoder runs without autograd.
        encoder: the context target loss of the encoder's interface output.
        decoder: NLL of the target tokens given the context target vectors.
        classification: cross-entropy of the labels (``batch.tgt_out[:, 0]``).
        """
        stage = self.cfg.train.stage
        encoder_frozen = frozen(model.part("encoder"))
        with self.autocast:
            if self.task == "classification":
                with torch.no_grad() if encoder_frozen else nullcontext():
                    features = model.head_input(batch.src, batch.src_mask)
                logits = model.head(features).unsqueeze(1)  # (B, 1, labels)
                labels = batch.tgt_out[:, :1]  # (B, 1)
                loss, nll, n = label_smoothed_nll(logits, labels, label_smoothing, -1)
                return StepLoss(loss, nll, n, correct=logits[:, 0].argmax(-1).eq(labels[:, 0]))
            if stage == "encoder":
                _, raw = model.predict_context(batch.src, batch.src_mask)
                loss, n, correct = model.context_target.loss_sum(raw, batch.context)
                return StepLoss(loss, loss.detach(), n, correct=correct)
            kl = None
            tgt_in = batch.tgt_in
            if stage == "decoder":
                encoded = model.encoded_from_vector(batch.context.to(next(model.parameters()).dtype))
            else:
                with torch.no_grad() if encoder_frozen else nullcontext():
                    encoded, kl = model.encode_with_kl(batch.src, batch.src_mask)
                if self.task == "autoencoder" and model.training:
                    tgt_in = word_dropout(tgt_in, self.cfg.autoencoder.word_dropout, UNK_ID, (PAD_ID, BOS_ID))
            logits = model.decoder(tgt_in, encoded)
        loss, nll, n = label_smoothed_nll(logits, batch.tgt_out, label_smoothing, PAD_ID)
        if kl is not None:
            kl = kl.sum()
            a = self.cfg.autoencoder
            loss = loss + kl_weight(step, a.kl_schedule, a.kl_anneal_steps, a.kl_weight) * kl
        return StepLoss(loss, nll, n, kl=kl)

    def _noised(self, examples: list[Example], epoch: int, batch_number: int) -> list[Example]:
        """Autoencoders: the examples with noisy sources (clean targets). The noise depends only
        on (seed, epoch, batch), so a resumed run sees the same noise."""
        a = self.cfg.autoencoder
        if self.task != "autoencoder" or not (a.drop or a.mask or a.shuffle):
            return examples
        rng = np.random.default_rng([self.cfg.train.seed, epoch, batch_number])
        return [Example(e.index, add_noise(e.src, rng, a.drop, a.mask, a.shuffle, a.shuffle_distance, UNK_ID), e.tgt)
                for e in examples]

    # ------------------------------------------------------------- validation
    @torch.no_grad()
    def _valid_loss(self, model: Composite, batches: list[Batch]) -> dict[str, float]:
        model.eval()
        loss_sum, n_terms, correct, rows, kl_sum = 0.0, 0, 0, 0, 0.0
        for batch in batches:
            out = self._forward(model, batch.to(self.device), 0.0)
            loss_sum += float(out.nll)
            n_terms += out.n
            rows += len(batch)
            if out.correct is not None:
                correct += int(out.correct.sum())
            if out.kl is not None:
                kl_sum += float(out.kl)
        train_mode(model)
        result = {"valid_loss": loss_sum / max(1, n_terms)}
        if self.task == "classification":
            result["valid_accuracy"] = 100.0 * correct / max(1, rows)
        elif self.cfg.train.stage == "encoder":
            result["valid_context_accuracy"] = 100.0 * correct / max(1, rows)
        else:
            result["valid_ppl"] = math.exp(min(result["valid_loss"], 50.0))
        if self.cfg.model.bottleneck == "variational" and self.task == "autoencoder":
            result["valid_kl"] = kl_sum / max(1, rows)  # nats per sentence
        return result

    def _validate(
        self, model: Seq2SeqModel, tokenizers: TokenizerPair, valid: ParallelText, batches: list[Batch]
    ) -> dict[str, float]:
        result = self._valid_loss(model, batches)
        if (self.task != "classification" and self.cfg.train.stage == "joint"
                and (self.cfg.train.valid_bleu or self.metric != "loss")):
            n = self.cfg.train.valid_max_sentences or len(valid.src)
            translator = Translator(model, tokenizers, self.cfg.search, self.device, self.cfg.model.max_positions,
                                    check_inputs=False)  # a validation set may hold rare characters: no report
            with self.autocast:
                hyps = translator.translate(valid.src[:n], beam=1)
            train_mode(model)
            refs = valid.tgt[:n]
            # BLEU only where asked for: outputs of one or two tokens (a digits model's "사천이십일")
            # have no 4-grams, so their BLEU is 0 next to 100% exact match. chrF scores them.
            if self.cfg.train.valid_bleu or self.metric == "bleu":
                result["valid_bleu"] = bleu(hyps, refs).score
            result["valid_chrf"] = chrf(hyps, refs).score
            result["valid_exact_match"] = exact_match(hyps, refs)
        return result

    def _score(self, result: dict[str, float]) -> float:
        return {"bleu": result.get("valid_bleu"), "exact_match": result.get("valid_exact_match"),
                "accuracy": result.get("valid_accuracy"), "loss": result["valid_loss"]}[self.metric]

    # ------------------------------------------------------------ checkpoints
    def _trainer_state(self, optimizer, schedule, progress: dict[str, Any]) -> dict[str, Any]:
        state = {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": list(random.getstate()[1]),
            "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            **progress,
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def _save(self, model, tokenizers, optimizer, schedule, progress, improved: bool, validated: bool = True) -> None:
        """Write ``best/`` (when improved), then ``last/``, then a ``step-N/`` copy (validations only).

        ``best/`` goes first: a crash between the two leaves ``last/`` at the previous save, and
        the resumed run repeats this validation and writes ``best/`` again.
        """
        state = self._trainer_state(optimizer, schedule, progress)
        extra: dict[str, Any] = {"step": progress["step"], "epoch": progress["epoch"]}
        if self.source_limits:
            extra["source_limits"] = self.source_limits
        if self.task == "classification":
            extra["labels"] = self.labels
        if improved:
            save_checkpoint(self.out / "best", model, self.cfg, tokenizers, None, extra)
        last = save_checkpoint(self.out / "last", model, self.cfg, tokenizers, state, extra)
        if validated and self.cfg.train.keep_last > 0:
            copy_checkpoint(last, self.out / f"step-{progress['step']}")
            kept = sorted((p for p in self.out.glob("step-*") if p.name.split("-")[1].isdigit()),
                          key=lambda p: int(p.name.split("-")[1]))
            for old in kept[: -self.cfg.train.keep_last]:
                shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        cfg, t = self.cfg, self.cfg.train
        self._prepare_output_dir()
        set_seed(t.seed)

        train_text, valid_text = self._load_data()
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)  # after the data: bad data leaves no empty run behind
        if self.task == "classification":
            self.labels = self._label_set(train_text)
        if self.dist.main or self.resume:
            tokenizers = self._build_tokenizers(train_text)
        if self.dist.active and not self.resume:  # rank 0 trains SentencePiece, the others read it
            if self.dist.main:
                tokenizers.save(self.out)
            self.dist.barrier()
            tokenizers = TokenizerPair.load(self.out)
        examples, stats = self._encode(train_text, tokenizers, drop=True)
        log.info("training data %s: %s", train_text.name, stats.summary())
        self.source_limits = source_limits([e.src for e in examples], train_text.src, cfg.data.normalize)
        train_targets = self._context_targets("train", train_text)
        if not examples:
            raise Seq2SeqError(f"no training pairs left after filtering {train_text.name} ({stats.summary()})")
        valid_batches: list[Batch] = []
        if valid_text is not None:
            valid_examples, _ = self._encode(valid_text, tokenizers, drop=False)
            valid_examples = [e for e in valid_examples if e.src and e.tgt]
            vs = TokenBudgetBatchSampler([len(e.src) for e in valid_examples], [len(e.tgt) + 1 for e in valid_examples],
                                         max_tokens=t.max_tokens, shuffle=False)
            valid_targets = self._context_targets("valid", valid_text)
            valid_batches = [collate([valid_examples[i] for i in b], valid_targets) for b in vs.batches(0)]

        model = self._build_model(tokenizers)
        if self.device.type == "cpu" and t.cpu_kernels:
            use_cpu_kernels(model)
        optimizer = self._build_optimizer(model)
        schedule = LRSchedule(optimizer, t.scheduler, t.lr, t.warmup_steps, t.plateau_factor,
                              t.plateau_patience, t.min_lr)
        progress: dict[str, Any] = {"step": 0, "epoch": 0, "batches_done": 0, "best_score": None,
                                    "best_loss": math.inf, "bad_validations": 0, "skipped_updates": 0, "seconds": 0.0}
        if self.resume:
            progress = self._restore(model, optimizer, schedule, progress)
        elif self.dist.main:
            tokenizers.save(self.out)
            (self.out / "config.yaml").write_text(cfg.to_json(), encoding="utf-8")

        n_params = sum(p.numel() for p in model.parameters())
        what = (f"{cfg.model.encoder} encoder + classifier head ({len(self.labels)} labels)"
                if isinstance(model, Classifier) else
                f"{cfg.model.encoder} encoder + {cfg.model.decoder} decoder (attention {cfg.model.attention})")
        log.info("task %s: %s, %.2fM parameters (%.2fM trainable), device %s, %s", self.task, what, n_params / 1e6,
                 sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, self.device,
                 "bf16 autocast" if isinstance(self.autocast, torch.autocast) else "fp32")
        logbook = JsonlLog(self.out / "train_log.jsonl", enabled=self.dist.main,
                           tensorboard=self.out / "tensorboard" if t.tensorboard else None)
        if self.resume:
            logbook.truncate_after(progress["step"])
        logbook.write(event="start", resume=self.resume, step=progress["step"], parameters=n_params,
                      train_pairs=stats.kept, filtered=stats.summary(), device=str(self.device),
                      world_size=self.dist.world)

        # Global batches of world_size x train.max_tokens, each split across the ranks.
        world = self.dist.world
        sampler = TokenBudgetBatchSampler([len(e.src) for e in examples], [len(e.tgt) + 1 for e in examples],
                                          max_tokens=t.max_tokens * world, max_sentences=t.max_sentences * world,
                                          shuffle=True, seed=t.seed)
        try:
            stop = self._loop(model, tokenizers, optimizer, schedule, sampler, examples, train_targets, valid_text,
                              valid_batches, progress, logbook)
            # Every rank is done (rank 0 writes the last checkpoint) before any leaves the process
            # group. Without this, 1 of ~10 runs of the 2-process test had rank 1 abort (SIGABRT)
            # at the end of training, presumably in gloo's teardown while rank 0 was still saving.
            self.dist.barrier()
        finally:
            logbook.close()
            if self.dist.active:
                torch.distributed.destroy_process_group()
        seconds = progress["seconds"]
        logbook.write(event="end", step=progress["step"], reason=stop, best=progress["best_score"], seconds=seconds)
        log.info("done (%s) after %d updates, %.0f s; best valid %s = %s; checkpoints in %s",
                 stop, progress["step"], seconds, self.metric, progress["best_score"], self.out)
        return TrainResult(self.out, progress["best_score"], self.metric, progress["step"], seconds)

    def _restore(self, model, optimizer, schedule, progress: dict[str, Any]) -> dict[str, Any]:
        last = resolve_checkpoint(self.out / "last")
        state = load_trainer_state(last)  # verifies the checkpoint's files first
        # Through config_from_dict, so fields added since the run started take their defaults.
        saved = config_from_dict(json.loads((last / "config.json").read_text(encoding="utf-8"))["config"])
        if saved.model != self.cfg.model:
            raise ConfigError(f"--resume: the model section differs from the one in {last}/config.json")
        changed = trajectory_changes(saved, self.cfg)
        if changed:
            log.warning("--resume with changed settings (%s): the run goes on, but will not end where the "
                        "original run would have", ", ".join(changed))
        load_weights(model, last, self.device)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate((3, tuple(int(x) for x in state["python_rng"]), None))
        np_state = np.random.get_state()
        np.random.set_state((np_state[0], state["numpy_rng"].numpy().astype(np.uint32), *np_state[2:]))
        for key in progress:
            if key in state:
                progress[key] = state[key]
        log.info("resuming from %s at update %d (epoch %d, batch %d)", last, progress["step"],
                 progress["epoch"], progress["batches_done"])
        return progress

    def _loop(self, model, tokenizers, optimizer, schedule, sampler, examples: list[Example], train_targets,
              valid_text, valid_batches, progress, logbook: JsonlLog) -> str:
        t, dist = self.cfg.train, self.dist
        higher = HIGHER_IS_BETTER[self.metric]
        params = [p for p in model.parameters() if p.requires_grad]
        engine = None
        if dist.active:  # the loss as one forward of one module, which DDP wraps
            from torch.nn.parallel import DistributedDataParallel

            engine = DistributedDataParallel(LossModule(self, model), find_unused_parameters=True,
                                             device_ids=[self.device.index] if self.device.type == "cuda" else None)
        train_mode(model)
        window = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "sentences": 0, "tokens": 0, "time": time.time()}
        accumulated_tokens, micro = 0, 0
        bad_loss, bad_in_a_row = False, 0  # non-finite loss in this update; skipped updates in a row
        seconds_before = progress["seconds"]
        t0 = time.time()

        def elapsed() -> float:
            return seconds_before + time.time() - t0

        last_validated = [-1]  # the update of the last validation ...
        last_saved = [-1]  # ... and of the last save of last/

        def validate_and_save(reason: str) -> bool:
            """Returns True when training should stop (early stopping)."""
            if last_validated[0] == progress["step"]:
                return False  # already validated and saved at this update
            last_validated[0] = progress["step"]
            progress["seconds"] = elapsed()
            result = self._validate(model, tokenizers, valid_text, valid_batches) if valid_text and dist.main else {}
            result = dist.broadcast(result)  # every rank takes the same decisions from rank 0's result
            improved = True
            if result:
                score = self._score(result)
                best = progress["best_score"]
                # A tie on the metric (e.g. 100% exact match again) goes to the lower loss.
                improved = best is None or (score > best if higher else score < best) or (
                    score == best and result["valid_loss"] < progress["best_loss"]
                )
                if improved:
                    progress["best_score"] = score
                    progress["best_loss"] = result["valid_loss"]
                    progress["bad_validations"] = 0
                else:
                    progress["bad_validations"] += 1
                schedule.step_validation(score, higher, progress["step"])
                logbook.write(event="valid", step=progress["step"], epoch=progress["epoch"], reason=reason, **result,
                              best=progress["best_score"], lr=schedule.lr, seconds=progress["seconds"])
                if dist.main:
                    tqdm.write(f"[valid] step {progress['step']} epoch {progress['epoch']} "
                               + " ".join(f"{k}={v:.4g}" for k, v in result.items())
                               + (" (best)" if improved else f" (best {progress['best_score']:.4g})"))
            if dist.main:
                self._save(model, tokenizers, optimizer, schedule, progress, improved)
            last_saved[0] = progress["step"]
            return bool(t.patience and progress["bad_validations"] >= t.patience)

        def save_last() -> None:
            """``last/`` only (save_every, interruption): no validation, no step-N copy."""
            if last_saved[0] != progress["step"]:
                progress["seconds"] = elapsed()
                if dist.main:
                    self._save(model, tokenizers, optimizer, schedule, progress, improved=False, validated=False)
                last_saved[0] = progress["step"]

        with StopRequests() as stop_requested:
            while progress["epoch"] < t.max_epochs:
                batches = sampler.batches(progress["epoch"])
                bar = tqdm(total=len(batches), initial=progress["batches_done"], desc=f"epoch {progress['epoch'] + 1}",
                           unit="batch", disable=not (t.progress and dist.main), dynamic_ncols=True, mininterval=1.0,
                           leave=False)
                for positions in batches[progress["batches_done"]:]:
                    chosen = self._noised([examples[i] for i in positions], progress["epoch"], progress["batches_done"])
                    mine = dist.shard(chosen)  # this rank's sentences of the global batch (all of it alone)
                    if dist.active:
                        # DDP: every rank takes part in every backward (its gradient all-reduce). A
                        # rank left without a sentence runs one with weight 0; the all-reduce of the
                        # accumulated gradients happens on the last micro-batch only.
                        batch = collate(mine or chosen[:1], train_targets).to(self.device)
                        with nullcontext() if micro + 1 == t.accumulate else engine.no_sync():
                            out = engine(batch, t.label_smoothing, progress["step"])
                            loss_value = float(out.loss.detach()) if mine else 0.0
                            (out.loss * (1.0 if mine else 0.0)).backward()  # NaN too: all ranks must reduce
                    else:
                        batch = collate(mine, train_targets).to(self.device)
                        out = self._forward(model, batch, t.label_smoothing, progress["step"])
                        loss_value = float(out.loss.detach())
                        if math.isfinite(loss_value):
                            out.loss.backward()
                    if mine and math.isfinite(loss_value):
                        window["loss"] += loss_value
                        window["nll"] += float(out.nll.detach())
                        window["kl"] += 0.0 if out.kl is None else float(out.kl.detach())
                        window["sentences"] += len(batch)
                        window["tokens"] += out.n
                    elif mine:
                        bad_loss = True  # the update is skipped below
                    accumulated_tokens += out.n if mine else 0
                    micro += 1
                    progress["batches_done"] += 1
                    bar.update(1)
                    if micro < t.accumulate:
                        continue
                    scale = 1.0
                    if dist.active:  # DDP averaged the ranks' gradient sums; tokens and faults: sum them too
                        accumulated_tokens = round(dist.sum_scalar(accumulated_tokens))
                        bad_loss = dist.sum_scalar(float(bad_loss)) > 0
                        scale = float(dist.world)
                    # One update: gradients were summed over tokens; make them a per-token mean.
                    grads = [p.grad for p in params if p.grad is not None]
                    if grads:
                        torch._foreach_mul_(grads, scale / max(1, accumulated_tokens))
                    norm = torch.nn.utils.clip_grad_norm_(params, t.clip_norm if t.clip_norm > 0 else float("inf"))
                    if not bad_loss and torch.isfinite(norm):
                        optimizer.step()
                        bad_in_a_row = 0
                    else:
                        bad_in_a_row += 1
                        self._skip_update(progress, logbook, "loss" if bad_loss else "gradient", bad_in_a_row)
                    optimizer.zero_grad(set_to_none=True)
                    micro, accumulated_tokens, bad_loss = 0, 0, False
                    progress["step"] += 1
                    schedule.step_update(progress["step"])

                    if progress["step"] % t.log_every == 0:
                        if dist.active:  # the whole job's sums (every rank reaches this update)
                            for key in ("loss", "nll", "kl", "sentences", "tokens"):
                                window[key] = dist.sum_scalar(window[key])
                        now = time.time()
                        tok = max(1, window["tokens"])
                        rate = window["tokens"] / max(1e-9, now - window["time"])
                        extra: dict[str, float] = {}
                        if self.cfg.model.bottleneck == "variational" and self.task == "autoencoder":
                            a = self.cfg.autoencoder
                            extra = {"kl": window["kl"] / max(1, window["sentences"]),  # nats per sentence
                                     "kl_weight": kl_weight(progress["step"], a.kl_schedule, a.kl_anneal_steps,
                                                            a.kl_weight)}
                        logbook.write(event="train", step=progress["step"], epoch=progress["epoch"],
                                      loss=window["loss"] / tok, nll=window["nll"] / tok,
                                      ppl=math.exp(min(window["nll"] / tok, 50.0)), **extra, lr=schedule.lr,
                                      tokens_per_s=rate, grad_norm=float(norm), seconds=elapsed())
                        bar.set_postfix(loss=f"{window['loss'] / tok:.3f}", lr=f"{schedule.lr:.2e}",
                                        tok_s=f"{rate:.0f}", **{k: f"{v:.3g}" for k, v in extra.items()})
                        window = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "sentences": 0, "tokens": 0, "time": now}
                    if t.valid_every and progress["step"] % t.valid_every == 0:
                        if validate_and_save("interval"):
                            bar.close()
                            return "early stopping"
                    if t.max_steps and progress["step"] >= t.max_steps:
                        bar.close()
                        validate_and_save("max_steps")
                        return "max_steps"
                    if t.max_minutes and dist.broadcast(elapsed() >= 60 * t.max_minutes):
                        bar.close()
                        validate_and_save("max_minutes")
                        return "max_minutes"
                    if t.save_every and progress["step"] % t.save_every == 0:
                        save_last()
                    if dist.sum_scalar(float(stop_requested())) > 0:  # any rank's Ctrl-C stops all
                        bar.close()
                        save_last()
                        logbook.write(event="interrupted", step=progress["step"], seconds=progress["seconds"])
                        log.warning("interrupted at update %d: saved %s; continue with --resume",
                                    progress["step"], self.out / "last")
                        raise KeyboardInterrupt
                bar.close()
                progress["epoch"] += 1
                progress["batches_done"] = 0
                if not t.valid_every and validate_and_save("epoch"):
                    return "early stopping"
        if t.valid_every:
            validate_and_save("end")
        return "max_epochs"

    def _skip_update(self, progress: dict[str, Any], logbook: JsonlLog, what: str, in_a_row: int) -> None:
        """Count and log an update skipped for a non-finite loss or gradient; stop after
        ``train.max_bad_updates`` in a row (the parameters never saw the bad values)."""
        progress["skipped_updates"] += 1
        step = progress["step"] + 1
        logbook.write(event="skipped", step=step, reason=f"non-finite {what}", in_a_row=in_a_row,
                      skipped_updates=progress["skipped_updates"])
        log.warning("non-finite %s at update %d: update skipped (%d in a row, %d in all)", what, step, in_a_row,
                    progress["skipped_updates"])
        limit = self.cfg.train.max_bad_updates
        if in_a_row >= limit:
            raise Seq2SeqError(
                f"training diverged: {in_a_row} updates in a row had a non-finite {what} (train.max_bad_updates="
                f"{limit}, last at update {step}). The last good checkpoint is {self.out / 'last'}. Lower "
                "train.lr or raise train.warmup_steps, check the data, or use train.precision=fp32; then "
                "--resume or start again"
            )


class LossModule(torch.nn.Module):
    """The trainer's loss on a batch as the ``forward`` of one module, for
    ``DistributedDataParallel`` to wrap (DDP starts by broadcasting rank 0's weights)."""

    def __init__(self, trainer: Trainer, model: Composite) -> None:
        super().__init__()
        self.trainer = trainer
        self.model = model

    def forward(self, batch: Batch, label_smoothing: float, step: int) -> StepLoss:
        return self.trainer._forward(self.model, batch, label_smoothing, step)


class StopRequests:
    """Turns SIGINT/SIGTERM into a request the loop honours at the next update boundary.

    Used as ``with StopRequests() as requested: ... if requested(): ...``. A second SIGINT
    raises KeyboardInterrupt at once. Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("%s: stopping after this update and saving last/ (Ctrl-C again to abort without saving)",
                    signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return lambda: self.requested

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
