"""``seq2seq evaluate``: translate a test set, streaming like translate (windows of ``--window``
lines), and print BLEU and chrF against its references."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any

from seq2seq.cli.decoding import add_translator_flags, decoding_settings, load_translator, strict_refusal, window_size
from seq2seq.cli.images import evaluate_images, reads_items
from seq2seq.cli.inputs import InputWindows, count_input_lines, is_stream
from seq2seq.cli.output import WindowOutput, clean_line
from seq2seq.errors import Seq2SeqError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seq2seq.data.textio import read_lines
    from seq2seq.metrics import bleu, chrf

    if reads_items(args.checkpoint):  # images or vectors in (docs/images.md)
        return evaluate_images(args)
    if args.window is not None and args.window < 1:
        raise Seq2SeqError(f"--window must be at least 1, got {args.window}")
    counted = None if is_stream(args.src) else count_input_lines(args.src)
    references = read_lines(args.ref)

    def check_counts(sources: int) -> None:
        if not sources:
            raise Seq2SeqError(f"{args.src} has no lines: nothing to evaluate")
        if sources != len(references):
            raise Seq2SeqError(
                f"{args.src} has {sources} lines but {args.ref} has {len(references)}; "
                "source and reference must be line-aligned"
            )

    if counted is not None:
        check_counts(counted)
    search = decoding_settings(args)
    window = window_size(args, search)
    translator = load_translator(args, search)
    if args.strict and counted is not None:
        report = translator.check_windows(InputWindows(args.src, window))
        if report:
            raise strict_refusal(report)
    hyps: list[str] = []  # kept for scoring: a test set's worth
    reader = InputWindows(args.src, window)
    with WindowOutput(args.output, resumable=False) if args.output else nullcontext() as out:
        for window in translator.translate_windows(reader, strict=args.strict, progress=not args.quiet, total=counted):
            texts = [h[0][0] for h in window]
            hyps.extend(texts)
            if out is not None:
                out.write("".join(clean_line(h) + "\n" for h in texts), len(texts))
        check_counts(reader.lines_read)
    print(bleu(hyps, references))
    print(chrf(hyps, references))
    if args.lowercase_bleu:
        print(bleu(hyps, references, tokenize="13a", lowercase=True))
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``evaluate``."""
    p = sub.add_parser(
        "evaluate",
        help="translate a test set and print BLEU and chrF",
        description="Translate --src and score against --ref with sacreBLEU "
        "(detokenized, cased BLEU and chrF, with signatures).",
    )
    add_translator_flags(p)
    p.add_argument("--src", required=True, metavar="FILE", help="source text, one sentence per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference translations, line-aligned with --src")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the translations here")
    p.add_argument(
        "--lowercase-bleu",
        action="store_true",
        help="also print tokenized lowercase BLEU (13a, lowercase) to compare with older papers",
    )
    p.set_defaults(func=cmd_evaluate)
