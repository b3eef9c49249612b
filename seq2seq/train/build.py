"""What a run is made of, built from its :class:`Config`: data, SentencePiece models, model,
optimizer, and where it runs (device, processes, precision). Each function is one step of
:meth:`Trainer.fit`; the objective supplies what differs between cases.

The training split is never loaded: SentencePiece reads it as a stream, and it is tokenized
once into a token store (:mod:`seq2seq.data.store`) that every later run and every rank maps
into memory. ``seq2seq prepare`` runs these steps alone (:func:`prepare`).

When ``data.train`` lists several corpora, the source is their :class:`Corpora` (SentencePiece
reads them all), each corpus gets its own store, keyed and cached as it would be alone, and the
stores are read as one :class:`CorpusMix`, batched by :class:`WeightedBatchSampler`
(docs/data.md)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from seq2seq.checkpoint import load_part, resolve_checkpoint
from seq2seq.config import Config, several_corpora, train_corpora
from seq2seq.config.validation import labels_given
from seq2seq.data.batching import Batch, collate
from seq2seq.data.context_targets import load_context_targets
from seq2seq.data.image_sources import ItemSource, ItemStore, digit_context_targets
from seq2seq.data.loading import Corpora, ParallelText, TextSource
from seq2seq.data.normalize import source_normalizer
from seq2seq.data.samplers import TokenBudgetBatchSampler, WeightedBatchSampler
from seq2seq.data.store import CorpusMix, StoreExamples, TokenStore
from seq2seq.data.store_build import cached_tokenizers, default_cache_dir, open_store, store_dir
from seq2seq.data.store_key import store_spec
from seq2seq.data.text_formats import resolve_path
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import ConfigError, DataError
from seq2seq.models import Composite
from seq2seq.models.cpu_kernels import use_cpu_kernels
from seq2seq.runtime import avoid_per_shape_attention_plans, resolve_device, resolve_precision
from seq2seq.train.distributed import Distributed, init_distributed
from seq2seq.train.freeze import freeze_parts
from seq2seq.train.objectives import Objective
from seq2seq.train.schedules import LRSchedule

log = logging.getLogger("seq2seq.train")


def runtime(cfg: Config) -> tuple[torch.device, Distributed, AbstractContextManager]:
    """Where the run computes: its device (a rank's own GPU when ``torchrun`` started several
    processes), its place among the processes, and bf16 autocast or nothing (``train.precision``)."""
    t = cfg.train
    device = resolve_device(t.device)
    dist = init_distributed(device.type)  # launched by torchrun: one rank of several
    if dist.active and device.type == "cuda":
        device = torch.device(dist.device)
        torch.cuda.set_device(device)
    if device.type == "cuda":
        avoid_per_shape_attention_plans()
    precision = resolve_precision(t.precision, device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    return device, dist, autocast


def train_source(cfg: Config, objective: Objective, echo: bool = True) -> TextSource:
    """The training split as a stream (nothing is read yet; missing files are errors here); for
    several corpora (``data.train`` a list), those of weight > 0 as one :class:`Corpora`.
    ``echo``: log the corpora left out (one rank of several: only the first)."""
    if not several_corpora(cfg.data):
        return objective.source(cfg.data.train)
    corpora = train_corpora(cfg.data)
    for c in corpora:
        if not c.weight and echo:
            log.info("training corpus %s: weight 0, left out", c.split)
    sources = []
    for i, c in enumerate(corpora):
        if c.weight > 0:
            try:
                sources.append(objective.source(c.split))
            except DataError as e:
                raise DataError(f"data.train[{i}] ('{c.split}'): {e}") from None
    used = [c for c in corpora if c.weight > 0]
    return Corpora.of(sources, [c.weight for c in used], [c.split for c in used])


def load_valid(cfg: Config, objective: Objective) -> Optional[ParallelText]:
    """The validation split (if any) in memory, sources normalized as ``translate`` does."""
    d = cfg.data
    valid = objective.load(d.valid) if d.valid else None
    if valid is not None and d.normalize != "none":  # translation only (validate() says so)
        valid = replace(valid, src=list(map(source_normalizer(d.normalize), valid.src)))
    return valid


def cache_dir(cfg: Config, source: TextSource) -> Path:
    """``data.cache_dir``, or the default for ``source`` (see :func:`~seq2seq.data.store.default_cache_dir`)."""
    return Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_dir(source)


def _reading(cfg: Config) -> dict[str, Any]:
    """The data settings that decide what is read from a split's files."""
    d = cfg.data
    return {
        "format": d.format,
        "src_lang": d.src_lang,
        "tgt_lang": d.tgt_lang,
        "skip_header": d.skip_header,
        "hub_config": d.hub_config,
    }


def _store_dirs(cfg: Config, objective: Objective, source: TextSource, tokenizers: TokenizerPair) -> list[Path]:
    """Where the store of each corpus of ``source`` is (or would be)."""
    parts = source.parts if isinstance(source, Corpora) else (source,)
    if isinstance(source, ItemSource):
        return []  # held in memory, no store
    return [
        store_dir(
            cache_dir(cfg, part), store_spec(objective.store_kind, part, _reading(cfg), cfg.data.normalize, tokenizers)
        )
        for part in parts
    ]


def train_store(
    cfg: Config,
    objective: Objective,
    source: TextSource,
    tokenizers: TokenizerPair,
    build: bool = True,
    echo: bool = True,
) -> TokenStore | CorpusMix:
    """The token store of the training split for ``tokenizers``: opened, or built when missing
    (``build=False``: a DataError instead). Several corpora: one store each (in the cache
    directory and under the key it would have alone), read as one :class:`CorpusMix`.
    ``echo``: log each store opened or built."""
    if isinstance(source, Corpora):
        stores = [train_store(cfg, objective, part, tokenizers, build, echo) for part in source.parts]
        return CorpusMix(stores, source.weights, source.splits)
    if isinstance(source, ItemSource):  # images or vectors: in memory (data/image_sources.py)
        return ItemStore(source.data(), tokenizers.tgt.encode_batch)  # type: ignore[return-value]
    spec = store_spec(objective.store_kind, source, _reading(cfg), cfg.data.normalize, tokenizers)
    return open_store(
        cache_dir(cfg, source), spec, source, tokenizers, build=build, progress=cfg.train.progress, echo=echo
    )


def shared_train_store(
    cfg: Config, objective: Objective, source: TextSource, tokenizers: TokenizerPair, dist: Distributed
) -> TokenStore | CorpusMix:
    """:func:`train_store` for every rank: built if missing by the first rank of each machine
    while the others wait, then opened by every rank (logged by rank 0 alone)."""
    builder = dist.local_rank == 0
    store = train_store(cfg, objective, source, tokenizers, echo=dist.main) if builder else None
    dist.barrier()
    return store or train_store(cfg, objective, source, tokenizers, build=False, echo=False)


def train_sampler(cfg: Config, train: StoreExamples, world: int, echo: bool = True) -> TokenBudgetBatchSampler:
    """Global batches of ``world`` x ``train.max_tokens``, each split across the ranks; from
    several corpora, sampled by their weights (logged when ``echo``, rank 0 of several: each
    corpus's pairs and share)."""
    t = cfg.train
    if isinstance(train.store, CorpusMix):
        mix = train.store
        sampler = WeightedBatchSampler(
            train.src_lengths,
            train.tgt_lengths + 1,
            mix.corpus_sizes(train.rows),
            mix.weights,
            max_tokens=t.max_tokens * world,
            max_sentences=t.max_sentences * world,
            seed=t.seed,
        )
        if echo:
            log_corpora(mix, sampler)
        return sampler
    return TokenBudgetBatchSampler(
        train.src_lengths,
        train.tgt_lengths + 1,
        max_tokens=t.max_tokens * world,
        max_sentences=t.max_sentences * world,
        shuffle=True,
        seed=t.seed,
    )


def log_corpora(mix: CorpusMix, sampler: WeightedBatchSampler) -> None:
    """One line per corpus: its pairs (kept by the length limits, of all), its weight and its
    share of an epoch's samples."""
    expected = sampler.expected()
    total = sum(expected)
    for k, (split, store) in enumerate(zip(mix.splits, mix.stores)):
        kept, weight = sampler.sizes[k], sampler.weights[k]
        log.info(
            "training corpus %d/%d %s: %s of %s pairs kept, weight %g: %s samples an epoch (%.1f%%)",
            k + 1,
            len(mix.stores),
            split,
            f"{kept:,}",
            f"{store.size:,}",
            weight,
            f"{round(expected[k]):,}",
            100.0 * expected[k] / total if total else 0.0,
        )
        if not kept:
            log.warning("training corpus %s: no pair within the length limits; nothing is drawn from it", split)


def source_limits(cfg: Config, train: StoreExamples) -> dict[str, int]:
    """What the training sources were like (see :mod:`seq2seq.data.domain`): the longest kept
    source in tokens and, for numerals, the most integer and decimal digits of any source."""
    limits = {"max_tokens": int(train.src_lengths.max(initial=0))}
    if cfg.data.normalize == "numerals":
        limits.update(train.store.numeral_limits)
    return limits


def context_targets(cfg: Config, name: str, rows: int, split: str) -> Optional[np.ndarray]:
    """The context target vectors of a split of ``rows`` lines named ``split`` (stages
    ``encoder``/``decoder``), else None."""
    if cfg.train.stage == "joint":
        return None
    if labels_given(cfg):  # per-item classes of generated digits: their place-value vectors
        return digit_context_targets(cfg, cfg.data.train if name == "train" else cfg.data.valid)
    key = "context_targets" if name == "train" else "valid_context_targets"
    path = getattr(cfg.data, key)
    if not path:
        raise ConfigError(f"train.stage={cfg.train.stage} needs data.{key} (one vector per line of {split})")
    return load_context_targets(resolve_path(cfg.data, path), rows, cfg.model.context_target_dim)


def valid_batches(cfg: Config, objective: Objective, valid: ParallelText, tokenizers: TokenizerPair) -> list[Batch]:
    """The validation set in token-budget batches (no length filter; empty sides dropped)."""
    examples, _ = objective.encode(valid, tokenizers, drop=False)
    examples = [e for e in examples if e.src and e.tgt]
    sampler = TokenBudgetBatchSampler(
        [len(e.src) for e in examples],
        [len(e.tgt) + 1 for e in examples],
        max_tokens=cfg.train.max_tokens,
        shuffle=False,
    )
    targets = context_targets(cfg, "valid", len(valid), valid.name)
    return [collate([examples[i] for i in b], targets) for b in sampler.batches(0)]


def build_tokenizers(cfg: Config, objective: Objective, train: TextSource) -> TokenizerPair:
    """SentencePiece models for a new run: given (``tokenizer.model``), trained on the training
    data, or brought by the checkpoints ``train.init_encoder`` / ``train.init_decoder`` load
    parts from (token ids must mean what they meant when those parts were trained).

    Models trained here read the split as a stream (SentencePiece keeps at most
    ``tokenizer.max_sentences`` of it) and are kept in the cache directory, so that the next run
    on the same data and settings (and ``seq2seq prepare`` before it) has the same models, hence
    the same token store."""
    t, tok, d = cfg.train, cfg.tokenizer, cfg.data
    texts = train.map_sources(source_normalizer(d.normalize)) if d.normalize != "none" else train

    def build() -> TokenizerPair:
        if tok.model or tok.tgt_model:
            return TokenizerPair.build(tok, [], [])

        def trained() -> TokenizerPair:
            train.require_examples()  # an empty split says so, not that SentencePiece has nothing to read
            log.info("training SentencePiece (%s, vocab %d) on %s", tok.model_type, tok.vocab_size, train.name)
            return TokenizerPair.build(tok, *objective.tokenizer_texts(texts))

        settings = {k: v for k, v in vars(tok).items() if k not in ("model", "tgt_model")}
        spec = {
            "kind": objective.store_kind,
            "source": train.name,
            "identity": train.identity(),
            "reading": _reading(cfg),
            "normalize": d.normalize,
            "tokenizer": settings,
        }
        return cached_tokenizers(cache_dir(cfg, train), spec, trained)

    given = {
        side: TokenizerPair.load(resolve_checkpoint(path))
        for side, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder))
        if path
    }
    if not given:
        return build()
    src = given["encoder"].src if "encoder" in given else None
    tgt = given["decoder"].tgt if "decoder" in given else None
    if tok.joint:
        for side, pair in given.items():
            if not pair.joint:
                raise ConfigError(
                    f"train.init_{side}: that checkpoint has separate source and target "
                    "vocabularies; set tokenizer.joint=false"
                )
        if src is not None and tgt is not None and src.fingerprint != tgt.fingerprint:
            raise ConfigError(
                f"train.init_encoder ({t.init_encoder}) and train.init_decoder ({t.init_decoder}) use "
                "different SentencePiece models, which a joint vocabulary (tokenizer.joint=true) cannot hold"
            )
        src = tgt = src or tgt
    if tok.model:
        mine = build()
        for side, theirs, own in (("encoder", src, mine.src), ("decoder", tgt, mine.tgt)):
            if theirs is not None and theirs.fingerprint != own.fingerprint:
                raise ConfigError(
                    f"train.init_{side}: the checkpoint's SentencePiece model differs from tokenizer.model "
                    f"({tok.model}); token ids would not match. Leave tokenizer.model empty to use the "
                    "checkpoint's."
                )
        src, tgt = src or mine.src, tgt or mine.tgt
    elif src is None or tgt is None:
        built = build()
        src, tgt = src or built.src, tgt or built.tgt
    return TokenizerPair(src) if tok.joint else TokenizerPair(src, tgt)


def run_tokenizers(
    cfg: Config, objective: Objective, source: TextSource, dist: Distributed, out: Path, resumed: Optional[Path]
) -> TokenizerPair:
    """The run's SentencePiece models: those of the checkpoint a resumed run continues
    (``resumed``), or new ones (:func:`build_tokenizers`), which with several processes the
    first rank builds and saves in ``out`` and the others read from there."""
    if resumed is not None:
        return TokenizerPair.load(resumed)
    tokenizers = build_tokenizers(cfg, objective, source) if dist.main else None
    if dist.active:
        if dist.main:
            tokenizers.save(out)
        dist.barrier()
        tokenizers = TokenizerPair.load(out)
    return tokenizers


def build_model(
    cfg: Config, objective: Objective, tokenizers: TokenizerPair, device: torch.device, load_parts: bool = True
) -> Composite:
    """The objective's model on ``device``: parts loaded from ``train.init_encoder`` /
    ``init_decoder`` (``load_parts``: a new run), ``train.freeze`` and, in staged training,
    the half that is not trained frozen (and never run); on CPU, ``train.cpu_kernels``."""
    t = cfg.train
    model = objective.build_model(tokenizers)
    if load_parts:
        for part, path in (("encoder", t.init_encoder), ("decoder", t.init_decoder)):
            if path:
                load_part(model, path, part)
                log.info("%s initialised from %s", part, path)
    unused = {"encoder": ["decoder"], "decoder": ["encoder"]}.get(t.stage, [])
    freeze_parts(model, [*t.freeze, *unused])
    model = model.to(device)
    if device.type == "cpu" and t.cpu_kernels:
        use_cpu_kernels(model)
    return model


def build_optimizer(cfg: Config, model: Composite, device: torch.device) -> torch.optim.Optimizer:
    t = cfg.train
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("train.freeze leaves no trainable parameters")
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": t.lr, "betas": tuple(t.betas), "eps": t.eps, "weight_decay": t.weight_decay}
    if device.type == "cuda":
        kwargs["fused"] = True
    if t.encoder_lr_scale != 1.0:  # the encoder's part (a pretrained one) at a scaled rate
        encoder = {id(p) for m in model.part("encoder") for p in m.parameters()}
        groups = [[p for p in params if id(p) in encoder], [p for p in params if id(p) not in encoder]]
        scaled = [{"params": groups[0], "lr_scale": t.encoder_lr_scale}, {"params": groups[1]}]
        return cls([g for g in scaled if g["params"]], **kwargs)
    return cls(params, **kwargs)


def build_schedule(cfg: Config, optimizer: torch.optim.Optimizer) -> LRSchedule:
    t = cfg.train
    return LRSchedule(
        optimizer, t.scheduler, t.lr, t.warmup_steps, t.plateau_factor, t.plateau_patience, t.min_lr, t.max_steps
    )
