"""``seq2seq prepare``'s work: what a new training run does before it builds its model
(SentencePiece models, the token stores, the validation split read), done alone, with a record
of each corpus for the command to print."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from seq2seq.config import Config
from seq2seq.data.batching import FilterStats
from seq2seq.data.loading import ParallelText
from seq2seq.data.store import CorpusMix, TokenStore
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.train.build import _store_dirs, build_tokenizers, load_valid, train_source, train_store


@dataclass
class PreparedCorpus:
    """One corpus of the training split as :func:`prepare` left it (``seq2seq prepare`` prints a
    line of each)."""

    split: str  # its name in data.train
    store: TokenStore
    stats: FilterStats  # what the config's length limits keep of it
    built: bool  # False: the store was there already
    weight: float = 1.0  # its sampling weight (several corpora)


@dataclass
class Prepared:
    """What :func:`prepare` made or found."""

    tokenizers: TokenizerPair
    store: TokenStore | CorpusMix
    stats: FilterStats  # what the config's length limits keep of the store
    valid: Optional[ParallelText]
    built_seconds: float  # 0: the store was there already
    corpora: list[PreparedCorpus] = field(default_factory=list)  # one per store (none: images, vectors)


def prepare(cfg: Config) -> Prepared:
    """What a new training run of ``cfg`` does before building its model: SentencePiece models
    (trained on the split, or given), the token store of the training split, the validation
    split read (so its errors show now). Nothing is written but the cache."""
    from seq2seq.train.objectives import choose_objective

    objective = choose_objective(cfg)
    source = train_source(cfg, objective)
    valid = load_valid(cfg, objective)
    tokenizers = build_tokenizers(cfg, objective, source)
    start = time.time()
    existed = [(d / "meta.json").is_file() for d in _store_dirs(cfg, objective, source, tokenizers)]
    store = train_store(cfg, objective, source, tokenizers)
    objective.prepare(store)
    _, stats = objective.select(store)
    corpora: list[PreparedCorpus] = []
    if isinstance(store, CorpusMix):
        for part, split, weight, there in zip(store.stores, store.splits, store.weights, existed):
            corpora.append(PreparedCorpus(split, part, objective.select(part)[1], not there, weight))
    elif isinstance(store, TokenStore):
        split = cfg.data.train if isinstance(cfg.data.train, str) else store.name
        corpora.append(PreparedCorpus(split, store, stats, not all(existed)))
    return Prepared(tokenizers, store, stats, valid, 0.0 if all(existed) else time.time() - start, corpora)
