"""``seq2seq translate``: raw text lines in, one translation per line out (interactive at a
terminal).

It streams: input is read in windows of ``--window`` lines (a window also ends where a pipe
pauses), each window is sorted by length, decoded and written (flushed; fsynced into
``FILE.partial`` with ``--output FILE``) before the next is read. ``--resume`` goes on from a
partial file; ``--shard K/N`` translates the K-th of N contiguous blocks of the input. Details:
docs/translate.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

from seq2seq import __version__
from seq2seq.cli.decoding import add_translator_flags, decoding_settings, load_translator, strict_refusal, window_size
from seq2seq.cli.images import reads_items, refuse_flags
from seq2seq.cli.inputs import InputWindows, count_input_lines, is_stream, read_input_lines
from seq2seq.cli.io import add_io_flags, saved_config
from seq2seq.cli.output import WindowOutput, clean_line
from seq2seq.cli.shards import parse_shard, shard_device, shard_output, shard_range
from seq2seq.errors import DataError, Seq2SeqError


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


def cmd_translate(args: argparse.Namespace) -> int:
    if args.nbest < 1:
        raise Seq2SeqError("--nbest must be at least 1")
    if reads_items(args.checkpoint):  # images or vectors in: before any text-only check
        return _translate_items(args)
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
    search = _search(args)
    prefixes = _read_prefixes(args)
    shard_device(args)
    window = window_size(args, search)
    translator = load_translator(args, search)
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
            raise strict_refusal(report)
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


def _search(args: argparse.Namespace) -> Any:
    """The decoding settings, with --nbest checked against the beam."""
    search = decoding_settings(args)
    if args.nbest > search.beam:
        beam = "--beam" if args.beam is not None else "the checkpoint's beam"
        hint = "" if args.beam is not None else "; give --beam too"
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed {beam} ({search.beam}){hint}")
    return search


# The flags of text input that mean nothing for images or vectors: refused, never ignored.
ITEM_REFUSED = ("resume", "shard", "strict", "prefix_file", "plot_attention", "window", "batch_tokens")


def _translate_items(args: argparse.Namespace) -> int:
    """A checkpoint that reads images or vectors: --input FILE.npy (N, *item_shape) or
    (N, S, *item_shape), or a file (or stdin) listing image files, one per line; one output line
    per input. The inputs are read and checked before the model is loaded."""
    from seq2seq.data.image_sources import read_image_list, read_inputs

    model = saved_config(args.checkpoint).model
    if model.decoder == "image":
        raise Seq2SeqError(
            f"{args.checkpoint} is an image autoencoder: it writes images, not text; use 'seq2seq reconstruct' "
            "(or encode, score)"
        )
    refuse_flags([("--" + name.replace("_", "-"), getattr(args, name)) for name in ITEM_REFUSED])
    search = _search(args)
    shape = tuple(model.item_shape)
    if is_stream(args.input):  # image files named on stdin, relative to the working directory
        if args.input is None and sys.stdin is not None and sys.stdin.isatty():
            raise Seq2SeqError("a checkpoint that reads images has no interactive mode: give --input FILE")
        names = [line.strip() for line in read_input_lines(args.input) if line.strip()]
        inputs = read_image_list(names, Path.cwd(), args.input or "<stdin>", shape)
    else:
        inputs = read_inputs(Path(args.input), shape)
    translator = load_translator(args, search)
    hyps = translator.item_hypotheses(inputs, nbest=args.nbest, progress=not args.quiet, name=args.input or "input")
    with WindowOutput(args.output, nbest=args.nbest) as out:
        out.write(_window_text(hyps, 0, args.nbest), len(hyps))
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


def add_parsers(sub: Any) -> None:
    """Register ``translate``."""
    p = sub.add_parser(
        "translate",
        help="translate raw text lines (or images, arrays) with a checkpoint",
        description="Read raw text lines (stdin or --input) and write one detokenized "
        "translation per line, in order. Interactive when stdin is a terminal. A checkpoint "
        "whose encoder reads images or vectors takes --input FILE.npy or a list of image files, "
        "one per line (docs/images.md).",
    )
    add_translator_flags(p)
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
