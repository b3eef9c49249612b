"""What a run is made of, built from its :class:`Config`: data, SentencePiece models, model,
optimizer. Each function is one step of :meth:`Trainer.fit`; the objective supplies what
differs between cases."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Optional

import numpy as np
import torch

from seq2seq.checkpoint import load_part, resolve_checkpoint
from seq2seq.config import Config
from seq2seq.data.batching import Batch, TokenBudgetBatchSampler, collate
from seq2seq.data.context_targets import load_context_targets
from seq2seq.data.loading import ParallelText, resolve_path
from seq2seq.data.normalize import source_normalizer
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import ConfigError
from seq2seq.models import Composite
from seq2seq.train.objectives import Objective, freeze_parts

log = logging.getLogger("seq2seq.train")


def load_data(cfg: Config, objective: Objective) -> tuple[ParallelText, Optional[ParallelText]]:
    """The training and (if any) validation splits, sources normalized as ``translate`` does."""
    d = cfg.data
    train = objective.load(d.train)
    valid = objective.load(d.valid) if d.valid else None
    if d.normalize != "none":  # translation only (validate() says so)
        normalize = source_normalizer(d.normalize)
        train = replace(train, src=[normalize(s) for s in train.src])
        valid = valid and replace(valid, src=[normalize(s) for s in valid.src])
    return train, valid


def context_targets(cfg: Config, name: str, split: ParallelText) -> Optional[np.ndarray]:
    """The split's context target vectors (stages ``encoder``/``decoder``), else None."""
    if cfg.train.stage == "joint":
        return None
    key = "context_targets" if name == "train" else "valid_context_targets"
    path = getattr(cfg.data, key)
    if not path:
        raise ConfigError(f"train.stage={cfg.train.stage} needs data.{key} (one vector per line of {split.name})")
    return load_context_targets(resolve_path(cfg.data, path), len(split), cfg.model.context_target_dim)


def valid_batches(cfg: Config, objective: Objective, valid: ParallelText, tokenizers: TokenizerPair) -> list[Batch]:
    """The validation set in token-budget batches (no length filter; empty sides dropped)."""
    examples, _ = objective.encode(valid, tokenizers, drop=False)
    examples = [e for e in examples if e.src and e.tgt]
    sampler = TokenBudgetBatchSampler([len(e.src) for e in examples], [len(e.tgt) + 1 for e in examples],
                                      max_tokens=cfg.train.max_tokens, shuffle=False)
    targets = context_targets(cfg, "valid", valid)
    return [collate([examples[i] for i in b], targets) for b in sampler.batches(0)]


def build_tokenizers(cfg: Config, objective: Objective, train: ParallelText) -> TokenizerPair:
    """SentencePiece models for a new run: given (``tokenizer.model``), trained on the training
    data, or brought by the checkpoints ``train.init_encoder`` / ``train.init_decoder`` load
    parts from (token ids must mean what they meant when those parts were trained)."""
    t, tok = cfg.train, cfg.tokenizer
    src_texts, tgt_texts = objective.tokenizer_texts(train)

    def build(src: list[str], tgt: list[str]) -> TokenizerPair:
        if not tok.model:
            log.info("training SentencePiece (%s, vocab %d) on %d sentence pairs", tok.model_type, tok.vocab_size,
                     len(src))
        return TokenizerPair.build(tok, src, tgt)

    given = {side: TokenizerPair.load(resolve_checkpoint(path))
             for side, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder)) if path}
    if not given:
        return build(src_texts, tgt_texts)
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
        built = build(src_texts, tgt_texts)
        src, tgt = src or built.src, tgt or built.tgt
    return TokenizerPair(src) if tok.joint else TokenizerPair(src, tgt)


def build_model(cfg: Config, objective: Objective, tokenizers: TokenizerPair, device: torch.device,
                load_parts: bool = True) -> Composite:
    """The objective's model on ``device``: parts loaded from ``train.init_encoder`` /
    ``init_decoder`` (``load_parts``: a new run), ``train.freeze`` and, in staged training,
    the half that is not trained frozen (and never run)."""
    t = cfg.train
    model = objective.build_model(tokenizers)
    if load_parts:
        for part, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder)):
            if path:
                load_part(model, path, part)
                log.info("%s initialised from %s", part, path)
    unused = {"encoder": ["decoder"], "decoder": ["encoder"]}.get(t.stage, [])
    freeze_parts(model, [*t.freeze, *unused])
    return model.to(device)


def build_optimizer(cfg: Config, model: Composite, device: torch.device) -> torch.optim.Optimizer:
    t = cfg.train
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("train.freeze leaves no trainable parameters")
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": t.lr, "betas": tuple(t.betas), "eps": t.eps, "weight_decay": t.weight_decay}
    if device.type == "cuda":
        kwargs["fused"] = True
    return cls(params, **kwargs)
