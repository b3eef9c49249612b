"""``seq2seq prepare``: tokenize the training data once, without training (as
``fairseq-preprocess`` does); ``seq2seq train`` then finds what it made."""

from __future__ import annotations

import argparse
from typing import Any


def corpus_line(corpus: Any, k: int, of: int) -> str:
    """One corpus of the training split: its store (path, built or reused), pairs and tokens,
    and what the config's length limits keep of it."""
    store = corpus.store
    tokens = sum(int(store.meta[side]["tokens"]) for side in ("src", "tgt") if side in store.meta)
    seconds = store.meta.get("seconds")
    how = (f"built in {seconds:.1f} s" if seconds is not None else "built") if corpus.built else "reused"
    name = (
        f"training corpus {k}/{of} {corpus.split} (weight {corpus.weight:g})"
        if of > 1
        else f"training data {corpus.split}"
    )
    return (
        f"{name}: token store {store.path} ({how}): {store.size:,} pairs, {tokens:,} tokens; {corpus.stats.summary()}"
    )


def cmd_prepare(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.train.prepare import prepare

    cfg = load_config(args.config, args.set)
    prepared = prepare(cfg)
    for k, corpus in enumerate(prepared.corpora, 1):
        print(corpus_line(corpus, k, len(prepared.corpora)))
    if len(prepared.corpora) != 1:  # several corpora (or data held in memory): the whole split
        print(f"training data, with the config's length limits: {prepared.stats.summary()}")
    print(f"SentencePiece: {prepared.tokenizers!r}")
    if prepared.valid is not None:
        print(f"validation {prepared.valid.name}: {len(prepared.valid):,} pairs (read at each run, not stored)")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``prepare``."""
    p = sub.add_parser(
        "prepare",
        help="tokenize the training data into its token store, without training",
        description="Tokenize the training data of a config once into a memory-mapped token store "
        "(and train the SentencePiece models first when the config trains them), as 'seq2seq train' "
        "would before its first update; the next train run on the same data and tokenizer starts "
        "from it. The store goes to data.cache_dir (default: .seq2seq-cache/ beside the data).",
    )
    p.add_argument("config", help="YAML config file (the one you will train with)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set data.cache_dir=/scratch/cache (repeatable)",
    )
    p.set_defaults(func=cmd_prepare)
