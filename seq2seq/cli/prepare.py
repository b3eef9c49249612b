"""``seq2seq prepare``: tokenize the training data once, without training (as
``fairseq-preprocess`` does); ``seq2seq train`` then finds what it made."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_prepare(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.train import build

    cfg = load_config(args.config, args.set)
    prepared = build.prepare(cfg)
    store = prepared.store
    tokens = int(store.meta["src"]["tokens"]) + (int(store.meta["tgt"]["tokens"]) if store.kind == "pairs" else 0)
    print(
        f"token store: {store.path} ({store.size:,} pairs, {tokens:,} tokens, "
        f"{'built in ' + format(prepared.built_seconds, '.1f') + ' s' if prepared.built_seconds else 'already built'})"
    )
    print(f"with the config's length limits: {prepared.stats.summary()}")
    print(f"SentencePiece: {prepared.tokenizers!r}")
    if prepared.valid is not None:
        print(f"validation: {prepared.valid.name}, {len(prepared.valid):,} pairs")
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
