"""What the decoding commands (translate, evaluate; the decoding flags also reconstruct, sample
and serve) share: one flag per :class:`~seq2seq.config.SearchConfig` field overriding a
checkpoint's search settings, the translator's flags and loading, the window size and the
``--strict`` refusal."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from seq2seq.cli.io import add_checkpoint_flag, add_device_flag, checkpoint_errors, saved_config
from seq2seq.config import SearchConfig, validate_search
from seq2seq.errors import DataError, Seq2SeqError


# ---------------------------------------------------------------- decoding flags
def search_flag(name: str) -> str:
    """``max_len_a`` -> ``--max-len-a``."""
    return "--" + name.replace("_", "-")


def add_decoding_flags(p: argparse.ArgumentParser) -> None:
    """``--checkpoint``, and one flag per SearchConfig field (type and help from the field);
    a flag not given leaves the checkpoint's value."""
    add_checkpoint_flag(p, "checkpoint directory written by 'seq2seq train' (e.g. runs/NAME/best)")
    types = typing.get_type_hints(SearchConfig)
    for field in dataclasses.fields(SearchConfig):
        p.add_argument(
            search_flag(field.name),
            dest=field.name,
            type=types[field.name],
            default=None,
            metavar=field.metadata.get("metavar", "N"),
            help=f"{field.metadata['help']}; default: the checkpoint's search.{field.name}",
        )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for the model's operations (default: PyTorch's, one per core). "
        "1 is often faster for small batches, and on a machine busy with other work",
    )


def decoding_settings(args: argparse.Namespace) -> SearchConfig:
    """The checkpoint's search settings with the decoding flags given applied, checked by the
    rules of a config's search section (the messages name the flag); ``--threads``, if given,
    is applied to the process here."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise Seq2SeqError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(SearchConfig) if getattr(args, f.name) is not None
    }
    search = dataclasses.replace(saved_config(args.checkpoint).search, **given)
    validate_search(search, search_flag)
    return search


def add_translator_flags(p: argparse.ArgumentParser) -> None:
    add_decoding_flags(p)
    p.add_argument(
        "--quantize",
        choices=["int8", "int8-rows"],
        default=None,
        help="int8 dynamic quantization of the linear and GRU layers (CPU decoding: faster, "
        "smaller; check the BLEU on your data). int8-rows: one activation scale per sentence "
        "row, so an output does not depend on the other lines of its batch (7-8%% slower offline; "
        "GRU layers stay fp32)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="weights and activations in this type (default fp32): bf16/fp16 for GPUs; bf16 "
        "also on CPUs with native bf16",
    )
    add_device_flag(p)
    p.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="N",
        help="read, sort by length and decode N lines at a time, writing each window's output as soon as it is "
        "done (default: twice --batch-tokens, 12,000 lines at 6,000 tokens; a window also ends where piped "
        "input pauses)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse input the model was not trained to read (characters its source vocabulary "
        "does not have, sources longer than any in training; for digits models, text that is "
        "not a number): exit 2 and write nothing (an --input file is checked whole before "
        "anything is decoded; piped input a window at a time, and to stdout the windows before "
        "the refused one are out already). "
        "Without it such lines are translated all the same, with one warning listing them",
    )


def load_translator(args: argparse.Namespace, search: SearchConfig):
    from seq2seq.infer.translator import Translator

    if args.quantize and args.precision != "fp32":
        raise Seq2SeqError(
            f"--quantize {args.quantize} cannot be combined with --precision {args.precision}: "
            "int8 decoding keeps the rest of the model in fp32; drop one of them"
        )
    with checkpoint_errors(args.checkpoint):
        try:
            return Translator.from_checkpoint(
                args.checkpoint, device=args.device, search=search, quantize=args.quantize, precision=args.precision
            )
        except ValueError as e:
            raise Seq2SeqError(f"--quantize {args.quantize}: {e}") from None


def strict_refusal(report: Any) -> DataError:
    return DataError(
        f"{report.summary()}. Nothing was translated (strict): fix or remove these lines, "
        "or translate without --strict to get output for them anyway"
    )


def window_size(args: argparse.Namespace, search: SearchConfig) -> int:
    """``--window``, or by default twice the batch token budget
    (:func:`seq2seq.infer.translator.default_window`)."""
    from seq2seq.infer.translator import default_window

    return args.window if args.window is not None else default_window(search.batch_tokens)
