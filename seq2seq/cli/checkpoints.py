"""Commands on checkpoints and runs themselves: ``average``, ``plot`` and ``join``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from seq2seq.cli.io import checkpoint_errors
from seq2seq.errors import Seq2SeqError


def cmd_average(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import average_checkpoints, last_checkpoints

    if bool(args.checkpoints) == bool(args.run):
        raise Seq2SeqError("give either checkpoint directories or --run DIR (with --last N), not both")
    directories = [Path(d) for d in args.checkpoints] or last_checkpoints(args.run, args.last)
    if Path(args.output).resolve() in {d.resolve() for d in directories}:
        raise Seq2SeqError(f"--output {args.output} is one of the checkpoints to average; give a new directory")
    with checkpoint_errors(str(directories[-1]), "average the checkpoints"):
        path = average_checkpoints(directories, args.output)
    print(
        f"averaged {len(directories)} checkpoints ({', '.join(d.name for d in directories)}) into {path}",
        file=sys.stderr,
    )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from seq2seq.plots import plot_learning_curves

    path = plot_learning_curves([Path(r) for r in args.runs], Path(args.output))
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import join_checkpoints

    # join_checkpoints refuses an output that is not a checkpoint and an encoder without a decoder.
    with checkpoint_errors(args.encoder, f"join {args.encoder} and {args.decoder}"):
        out = join_checkpoints(args.encoder, args.decoder, args.output)
    print(f"joined the encoder of {args.encoder} and the decoder of {args.decoder} into {out}")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``average``, ``plot`` and ``join``."""
    p = sub.add_parser(
        "average",
        help="average the weights of several checkpoints (e.g. the last N of a run)",
        description="Write one checkpoint whose weights are the mean of several checkpoints' "
        "(same model and SentencePiece models), e.g. the last N step-N/ "
        "checkpoints of a run: often worth a fraction of a BLEU point.",
    )
    p.add_argument("checkpoints", nargs="*", metavar="DIR", help="checkpoint directories to average")
    p.add_argument(
        "--run", metavar="DIR", help="a training run's output_dir: average its last --last step-N/ checkpoints"
    )
    p.add_argument(
        "--last",
        type=int,
        default=5,
        metavar="N",
        help="with --run: how many (default 5; the run needs train.keep_last >= N)",
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="directory of the averaged checkpoint")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser(
        "plot",
        help="learning curves of training runs as a PNG",
        description="Plot training loss, validation loss, validation BLEU (or accuracy) and "
        "learning rate against updates, one line per run (needs matplotlib).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="a run's output_dir or its train_log.jsonl")
    p.add_argument("--output", "-o", required=True, metavar="PNG", help="the image to write")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "join",
        help="one checkpoint from the encoder of one and the decoder of another",
        description="Join the encoder part of one checkpoint and the decoder part of another "
        "(same architecture) into a new checkpoint, without training: the "
        "staged regime. Fine-tune it with train.init_encoder/init_decoder.",
    )
    p.add_argument(
        "--encoder", required=True, metavar="DIR", help="checkpoint whose encoder (and source tokenizer) to take"
    )
    p.add_argument(
        "--decoder", required=True, metavar="DIR", help="checkpoint whose decoder (and target tokenizer) to take"
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="directory of the joined checkpoint")
    p.set_defaults(func=cmd_join)
