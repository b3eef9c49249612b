"""``seq2seq train``, ``pretrain`` and ``classify-train``: fit a model described by a YAML config."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Optional

from seq2seq.allocator import current_allocator
from seq2seq.errors import Seq2SeqError


def cmd_train(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.train.trainer import Trainer

    task = args.task  # pretrain / classify-train: the task they are for
    cfg = load_config(args.config, args.set, default_task=task)
    if task and cfg.task != task:
        raise Seq2SeqError(
            f"{args.config} says task: {cfg.task}; 'seq2seq {args.command}' trains task {task} "
            f"(use 'seq2seq train' for any task)"
        )
    if os.environ.get("RANK", "0") == "0":  # (one line, not one per torchrun process)
        logging.getLogger("seq2seq.train").info("memory allocator: %s", current_allocator())
    result = Trainer(cfg, resume=args.resume).fit()
    print(f"best valid {result.metric}: {result.best_score}  ({result.steps} updates, {result.seconds:.0f} s)")
    print(f"checkpoints: {result.output_dir / 'best'} and {result.output_dir / 'last'}")
    return 0


def _add_train_parser(sub: Any, name: str, task: Optional[str], help: str, description: str) -> None:
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("config", help="YAML config file (see recipes/*/ for examples)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.lr=5e-4 (repeatable)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in train.output_dir from its last checkpoint"
    )
    p.set_defaults(func=cmd_train, task=task)


def add_parsers(sub: Any) -> None:
    """Register ``train`` (any task), ``pretrain`` (autoencoder) and ``classify-train``."""
    _add_train_parser(
        sub,
        "train",
        None,
        "train a model from a YAML config (any task)",
        "Train a model described by a YAML config. Checkpoints go to train.output_dir "
        "(best/, last/), with a JSON-lines log.",
    )
    _add_train_parser(
        sub,
        "pretrain",
        "autoencoder",
        "train a sequence autoencoder on monolingual text",
        "Train a (denoising / variational / binary-code) sequence autoencoder: task "
        "autoencoder, the default for this command. Attention is off unless the config "
        "turns it on. See recipes/autoencoder/.",
    )
    _add_train_parser(
        sub,
        "classify-train",
        "classification",
        "train a sentence classifier (sentence<TAB>label)",
        "Train a classifier head on an encoder (task classification, the default for this "
        "command); start from a pretrained encoder with train.init_encoder and keep it fixed "
        "with train.freeze: [encoder].",
    )
