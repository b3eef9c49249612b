"""``seq2seq translate`` and ``seq2seq evaluate``, and the decoding flags, one per
:class:`~seq2seq.config.SearchConfig` field, that override a checkpoint's search settings.

Both stream: input is read in windows of ``--window`` lines (a window also ends where a pipe
pauses), each window is sorted by length, decoded and written (flushed; fsynced into
``FILE.partial`` with ``--output FILE``) before the next is read. ``--resume`` goes on from a
partial file; ``--shard K/N`` translates the K-th of N contiguous blocks of the input. Details:
docs/translate.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import typing
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

from seq2seq import __version__
from seq2seq.cli.io import (
    InputWindows,
    WindowOutput,
    add_checkpoint_flag,
    add_device_flag,
    add_io_flags,
    checkpoint_errors,
    clean_line,
    count_input_lines,
    is_stream,
    read_input_lines,
    saved_config,
)
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


def decoding_settings(args: argparse.Namespace) -> SearchConfig:
    """The checkpoint's search settings with the decoding flags given applied, checked by the
    rules of a config's search section (the messages name the flag)."""
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(SearchConfig) if getattr(args, f.name) is not None
    }
    search = dataclasses.replace(saved_config(args.checkpoint).search, **given)
    validate_search(search, search_flag)
    return search


def _add_translator_flags(p: argparse.ArgumentParser) -> None:
    add_decoding_flags(p)
    p.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="int8 dynamic quantization of the linear and GRU layers (CPU decoding: faster, "
        "smaller; check the BLEU on your data)",
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


def _load_translator(args: argparse.Namespace, search: SearchConfig):
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


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``--shard``: "K/N" -> (K, N); "auto" -> (RANK, WORLD_SIZE) as torchrun sets them ((0, 1)
    outside torchrun); None -> None."""
    if text is None:
        return None
    if text == "auto":
        try:
            rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            raise Seq2SeqError("--shard auto: RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
        if not 0 <= rank < world:
            raise Seq2SeqError(f"--shard auto: RANK {rank} is not below WORLD_SIZE {world}")
        return rank, world
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not int(match[1]) < int(match[2]):
        raise Seq2SeqError(f"--shard {text}: give K/N with 0 <= K < N (e.g. 0/4 ... 3/4), or auto under torchrun")
    return int(match[1]), int(match[2])


def shard_output(path: Optional[str], shard: Optional[tuple[int, int]]) -> Optional[str]:
    """Where shard K of N writes ``--output FILE``: ``FILE.K-of-N``, K zero-padded so that
    ``cat FILE.*-of-N`` lists the shards in order (FILE itself for a single shard)."""
    if not path or path == "-" or shard is None or shard[1] == 1:
        return path
    k, n = shard
    return f"{path}.{k:0{len(str(n - 1))}d}-of-{n}"


def shard_range(k: int, n: int, lines: int) -> tuple[int, int]:
    """Shard ``k`` of ``n`` of ``lines`` lines: lines ``[start, stop)``, contiguous blocks whose
    sizes differ by at most one line, in order: the shards' outputs joined in order (``cat``)
    are the output of the whole input."""
    return k * lines // n, (k + 1) * lines // n


def _strict_refusal(report: Any) -> DataError:
    return DataError(
        f"{report.summary()}. Nothing was translated (strict): fix or remove these lines, "
        "or translate without --strict to get output for them anyway"
    )


def window_size(args: argparse.Namespace, search: SearchConfig) -> int:
    """``--window``, or by default twice the batch token budget
    (:func:`seq2seq.infer.translator.default_window`)."""
    from seq2seq.infer.translator import default_window

    return args.window if args.window is not None else default_window(search.batch_tokens)


def _window_text(hyps: list[list[tuple[str, float]]], first_index: int, nbest: int) -> str:
    """A window's output lines: the translations, or with ``nbest`` > 1 INDEX<TAB>SCORE<TAB>TEXT
    lines (INDEX: the input line, from 0)."""
    if nbest == 1:
        return "".join(clean_line(h[0][0]) + "\n" for h in hyps)
    return "".join(
        f"{first_index + i}\t{score:.4f}\t{clean_line(text)}\n"
        for i, sentence in enumerate(hyps)
        for text, score in sentence
    )


def _kept(windows: Iterable[list[str]], kept: list[str]) -> Iterator[list[str]]:
    """``windows``, each also added to ``kept``."""
    for window in windows:
        kept.extend(window)
        yield window


def _progress_total(path: Optional[str], quiet: bool) -> Optional[int]:
    """The input's line count for the progress bar, where one is shown and counting is cheap."""
    if quiet or is_stream(path) or not (sys.stderr is not None and sys.stderr.isatty()):
        return None
    return count_input_lines(path)  # type: ignore[arg-type]


def _shard_device(args: argparse.Namespace) -> None:
    """Under torchrun with ``--shard auto`` and ``--device auto``: each process on its own GPU
    (LOCAL_RANK), where there are GPUs."""
    if args.shard != "auto" or args.device != "auto" or "LOCAL_RANK" not in os.environ:
        return
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        args.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"


def cmd_translate(args: argparse.Namespace) -> int:
    if args.nbest < 1:
        raise Seq2SeqError("--nbest must be at least 1")
    if args.window is not None and args.window < 1:
        raise Seq2SeqError(f"--window must be at least 1, got {args.window}")
    shard = parse_shard(args.shard)
    to_stdout = not args.output or args.output == "-"
    if args.resume and to_stdout:
        raise Seq2SeqError("--resume needs --output FILE: it goes on from FILE.partial, which only a file output has")
    if shard and shard[1] > 1 and is_stream(args.input):
        raise Seq2SeqError(
            "--shard needs --input FILE, a regular file: its lines are counted to cut it into "
            "contiguous blocks, one per shard"
        )
    if shard and shard[1] > 1 and args.shard == "auto" and to_stdout:
        raise Seq2SeqError("--shard auto needs --output FILE: each process writes FILE.K-of-N (stdout would mix them)")
    search = decoding_settings(args)
    if args.nbest > search.beam:
        beam = "--beam" if args.beam is not None else "the checkpoint's beam"
        hint = "" if args.beam is not None else "; give --beam too"
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed {beam} ({search.beam}){hint}")
    prefixes = _read_prefixes(args)
    _shard_device(args)
    window = window_size(args, search)
    translator = _load_translator(args, search)
    if args.input is None and sys.stdin is not None and sys.stdin.isatty() and not args.resume:
        if prefixes is not None:
            raise Seq2SeqError("--prefix-file needs --input FILE or piped input (one prefix per input line)")
        return _interactive(translator, args)
    start, stop, total = 0, None, None
    if shard and shard[1] > 1:
        start, stop = shard_range(*shard, count_input_lines(args.input))
        total = stop - start
    else:
        total = _progress_total(args.input, args.quiet)
    if args.strict and not is_stream(args.input):  # check it all before hours of decoding
        report = translator.check_windows(InputWindows(args.input, window, start, stop), first_line=start)
        if report:
            raise _strict_refusal(report)
    kept_lines: list[str] = []
    outputs: list[str] = []
    with WindowOutput(shard_output(args.output, shard), resume=args.resume, nbest=args.nbest, first_index=start) as out:
        first = start + out.done
        if out.done and not args.quiet:
            print(
                f"seq2seq: {out.partial} has the first {out.done:,} line(s): going on from input line {first + 1:,}",
                file=sys.stderr,
            )
        reader = InputWindows(args.input, window, first, stop)
        windows = _kept(reader, kept_lines) if args.plot_attention else reader
        index = first
        try:
            for hyps in translator.translate_windows(
                windows,
                nbest=args.nbest,
                strict=args.strict,
                progress=not args.quiet,
                total=None if total is None else total - out.done,
                first_line=first,
                prefixes=prefixes,
            ):
                out.write(_window_text(hyps, index, args.nbest), len(hyps))
                index += len(hyps)
                if args.plot_attention:
                    outputs.extend(h[0][0] for h in hyps)
        except Seq2SeqError:
            if args.strict:
                out.discard()
            raise
        if prefixes is not None and index != len(prefixes) and stop is None:
            raise DataError(
                f"--prefix-file {args.prefix_file} has {len(prefixes):,} line(s) but the input had "
                f"{index:,}: give one prefix per input line"
            )
        if reader.lines_read < first:
            out.note = False
            name = args.input if args.input and args.input != "-" else "<stdin>"
            raise DataError(
                f"{name} has {reader.lines_read:,} line(s), but {out.partial} already holds the output "
                f"of {out.done:,}: it is not this input's output; delete it to start again"
            )
    if args.plot_attention:
        from seq2seq.infer.attention_maps import write_attention_maps

        count = write_attention_maps(translator, kept_lines, outputs, Path(args.plot_attention))
        print(f"wrote {count} attention map(s) to {args.plot_attention}", file=sys.stderr)
    return 0


def _read_prefixes(args: argparse.Namespace) -> Optional[list[Optional[str]]]:
    """--prefix-file: one target prefix per input line (an empty line: none), checked against an
    --input file's line count before anything is decoded."""
    if not args.prefix_file:
        return None
    prefixes: list[Optional[str]] = [line or None for line in read_input_lines(args.prefix_file)]
    if args.input and not is_stream(args.input):
        count = count_input_lines(args.input)
        if count != len(prefixes):
            raise DataError(
                f"--prefix-file {args.prefix_file} has {len(prefixes):,} line(s) but {args.input} "
                f"has {count:,}: give one prefix per input line (an empty line for none)"
            )
    return prefixes


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from seq2seq.data.textio import read_lines
    from seq2seq.metrics import bleu, chrf

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
    translator = _load_translator(args, search)
    if args.strict and counted is not None:
        report = translator.check_windows(InputWindows(args.src, window))
        if report:
            raise _strict_refusal(report)
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
    """Register ``translate`` and ``evaluate``."""
    p = sub.add_parser(
        "translate",
        help="translate raw text lines with a checkpoint",
        description="Read raw text lines (stdin or --input) and write one detokenized "
        "translation per line, in order. Interactive when stdin is a terminal.",
    )
    _add_translator_flags(p)
    p.add_argument(
        "--nbest",
        type=int,
        default=1,
        metavar="N",
        help="write the N best hypotheses per input as 'INDEX<TAB>SCORE<TAB>TEXT' lines "
        "(INDEX: the input line, from 0; N <= beam)",
    )
    add_io_flags(
        p,
        output_help="output file (default: stdout), written as FILE.partial window by window and "
        "renamed to FILE when complete",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on from the FILE.partial an interrupted run with the same input and options left "
        "(needs --output; without a partial file: start from the first line)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="translate only the K-th (from 0) of N contiguous blocks of the --input file, into "
        "FILE.K-of-N; 'cat FILE.*-of-N > FILE' joins them in order. auto: K and N from torchrun's "
        "RANK and WORLD_SIZE (and each process's GPU from LOCAL_RANK)",
    )
    p.add_argument(
        "--plot-attention",
        default=None,
        metavar="DIR",
        help="also draw one attention heat map per input line, DIR/LINE.png (source tokens "
        "against output tokens; needs matplotlib and a model with attention; keeps every line "
        "in memory: for small inputs)",
    )
    p.add_argument(
        "--prefix-file",
        default=None,
        metavar="FILE",
        help="one target-language prefix per input line (an empty line: none): each output starts "
        "with its prefix (the decoder is forced through it, then continues)",
    )
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser(
        "evaluate",
        help="translate a test set and print BLEU and chrF",
        description="Translate --src and score against --ref with sacreBLEU "
        "(detokenized, cased BLEU and chrF, with signatures).",
    )
    _add_translator_flags(p)
    p.add_argument("--src", required=True, metavar="FILE", help="source text, one sentence per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference translations, line-aligned with --src")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the translations here")
    p.add_argument(
        "--lowercase-bleu",
        action="store_true",
        help="also print tokenized lowercase BLEU (13a, lowercase) to compare with older papers",
    )
    p.set_defaults(func=cmd_evaluate)
