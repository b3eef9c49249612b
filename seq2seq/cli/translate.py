"""``seq2seq translate`` and ``seq2seq evaluate``, and the decoding flags, one per
:class:`~seq2seq.config.SearchConfig` field, that override a checkpoint's search settings."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from seq2seq import __version__
from seq2seq.cli.io import (
    add_checkpoint_flag,
    add_device_flag,
    add_io_flags,
    atomic_output,
    checkpoint_errors,
    clean_line,
    read_input_lines,
    saved_config,
)
from seq2seq.config import SearchConfig, validate_search
from seq2seq.errors import Seq2SeqError


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
        p.add_argument(search_flag(field.name), dest=field.name, type=types[field.name], default=None,
                       metavar=field.metadata.get("metavar", "N"),
                       help=f"{field.metadata['help']}; default: the checkpoint's search.{field.name}")


def decoding_settings(args: argparse.Namespace) -> SearchConfig:
    """The checkpoint's search settings with the decoding flags given applied, checked by the
    rules of a config's search section (the messages name the flag)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SearchConfig)
             if getattr(args, f.name) is not None}
    search = dataclasses.replace(saved_config(args.checkpoint).search, **given)
    validate_search(search, search_flag)
    return search


def _add_translator_flags(p: argparse.ArgumentParser) -> None:
    add_decoding_flags(p)
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8 dynamic quantization of the linear and GRU layers (CPU decoding: faster, "
                        "smaller; check the BLEU on your data)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="weights and activations in this type (default fp32): bf16/fp16 for GPUs; bf16 "
                        "also on CPUs with native bf16")
    add_device_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="refuse input the model was not trained to read (characters its source vocabulary "
                        "does not have, sources longer than any in training; for digits models, text that is "
                        "not a number): exit 2 and write nothing. "
                        "Without it such lines are translated all the same, with one warning listing them")


def _load_translator(args: argparse.Namespace, search: SearchConfig):
    from seq2seq.infer.translator import Translator

    if args.quantize and args.precision != "fp32":
        raise Seq2SeqError(f"--quantize {args.quantize} cannot be combined with --precision {args.precision}: "
                           "int8 decoding keeps the rest of the model in fp32; drop one of them")
    with checkpoint_errors(args.checkpoint):
        try:
            return Translator.from_checkpoint(args.checkpoint, device=args.device, search=search,
                                              quantize=args.quantize, precision=args.precision)
        except ValueError as e:
            raise Seq2SeqError(f"--quantize: {e}; use --device cpu") from None


# ---------------------------------------------------------------- translate
def _interactive(translator, args: argparse.Namespace) -> int:
    print(f"seq2seq {__version__}: type a sentence and press Enter; Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except UnicodeDecodeError:
            print("seq2seq: warning: that line is not valid UTF-8; skipped", file=sys.stderr)
            continue
        try:
            hyps = translator.translate_hypotheses([line], nbest=args.nbest, strict=args.strict)[0]
        except Seq2SeqError as e:  # --strict: this line is refused, the session goes on
            print(f"seq2seq: error: {e}", file=sys.stderr)
            continue
        for text, score in hyps:
            print(f"{clean_line(text)}\t{score:.4f}" if args.nbest > 1 else clean_line(text), flush=True)


def cmd_translate(args: argparse.Namespace) -> int:
    if args.nbest < 1:
        raise Seq2SeqError("--nbest must be at least 1")
    search = decoding_settings(args)
    if args.nbest > search.beam:
        beam = "--beam" if args.beam is not None else "the checkpoint's beam"
        hint = "" if args.beam is not None else "; give --beam too"
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed {beam} ({search.beam}){hint}")
    translator = _load_translator(args, search)
    if args.input is None and sys.stdin is not None and sys.stdin.isatty():
        return _interactive(translator, args)
    lines = read_input_lines(args.input)
    results = translator.translate_hypotheses(
        lines, nbest=args.nbest, progress=not args.quiet, strict=args.strict
    )
    with atomic_output(args.output) as out:
        for index, hyps in enumerate(results):
            if args.nbest == 1:
                out.write(clean_line(hyps[0][0]) + "\n")
            else:
                # n-best: one line per hypothesis, "INDEX<TAB>SCORE<TAB>TEXT", INDEX = input line from 0.
                for text, score in hyps:
                    out.write(f"{index}\t{score:.4f}\t{clean_line(text)}\n")
    if args.plot_attention:
        from seq2seq.infer.attention_maps import write_attention_maps

        count = write_attention_maps(translator, lines, [h[0][0] for h in results], Path(args.plot_attention))
        print(f"wrote {count} attention map(s) to {args.plot_attention}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from seq2seq.data.textio import read_lines
    from seq2seq.metrics import bleu, chrf

    sources = read_lines(args.src)
    references = read_lines(args.ref)
    if not sources:
        raise Seq2SeqError(f"{args.src} has no lines: nothing to evaluate")
    if len(sources) != len(references):
        raise Seq2SeqError(
            f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}; "
            "source and reference must be line-aligned"
        )
    search = decoding_settings(args)
    translator = _load_translator(args, search)
    hyps = translator.translate(sources, progress=not args.quiet, strict=args.strict)
    if args.output:
        with atomic_output(args.output) as out:
            out.writelines(clean_line(h) + "\n" for h in hyps)
    print(bleu(hyps, references))
    print(chrf(hyps, references))
    if args.lowercase_bleu:
        print(bleu(hyps, references, tokenize="13a", lowercase=True))
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``translate`` and ``evaluate``."""
    p = sub.add_parser("translate", help="translate raw text lines with a checkpoint",
                       description="Read raw text lines (stdin or --input) and write one detokenized "
                                   "translation per line, in order. Interactive when stdin is a terminal.")
    _add_translator_flags(p)
    p.add_argument("--nbest", type=int, default=1, metavar="N",
                   help="write the N best hypotheses per input as 'INDEX<TAB>SCORE<TAB>TEXT' lines "
                        "(INDEX: the input line, from 0; N <= beam)")
    add_io_flags(p)
    p.add_argument("--plot-attention", default=None, metavar="DIR",
                   help="also draw one attention heat map per input line, DIR/LINE.png (source tokens "
                        "against output tokens; needs matplotlib and a model with attention)")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("evaluate", help="translate a test set and print BLEU and chrF",
                       description="Translate --src and score against --ref with sacreBLEU "
                                   "(detokenized, cased BLEU and chrF, with signatures).")
    _add_translator_flags(p)
    p.add_argument("--src", required=True, metavar="FILE", help="source text, one sentence per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference translations, line-aligned with --src")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the translations here")
    p.add_argument("--lowercase-bleu", action="store_true",
                   help="also print tokenized lowercase BLEU (13a, lowercase) to compare with older papers")
    p.set_defaults(func=cmd_evaluate)
