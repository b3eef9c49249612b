"""The ``seq2seq`` command. Thin: it parses flags, reads/writes files and calls the library.

User errors (bad files, configs, checkpoints) print one line, ``seq2seq: error: ...``, and
exit with status 2; Ctrl-C exits with 130. Output files are written to a temporary name and
renamed when complete, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Optional

from seq2seq import __version__
from seq2seq.errors import Seq2SeqError

log = logging.getLogger("seq2seq")


# ------------------------------------------------------------------ helpers
def _read_input_lines(path: Optional[str]) -> list[str]:
    """Lines of ``path`` (or stdin when None / "-"), with clear errors for bad encodings."""
    from seq2seq.data.textio import decode_lines, read_lines

    if path and path != "-":
        return read_lines(path)
    return decode_lines(sys.stdin.buffer.read(), "<stdin>")


@contextmanager
def _atomic_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text stream that becomes ``path`` only when the block completes (stdout when None)."""
    if not path or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise Seq2SeqError(f"--output {target} is a directory; give a file name")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _clean_line(text: str) -> str:
    """Translations go one per line: never let a newline inside one break the alignment."""
    return text.replace("\r", " ").replace("\n", " ")


# --------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.train.trainer import Trainer

    cfg = load_config(args.config, args.set)
    result = Trainer(cfg, resume=args.resume).fit()
    print(f"best valid {result.metric}: {result.best_score}  ({result.steps} updates, {result.seconds:.0f} s)")
    print(f"checkpoints: {result.output_dir / 'best'} and {result.output_dir / 'last'}")
    return 0


def _load_translator(args: argparse.Namespace):
    from seq2seq.infer.translator import Translator

    translator = Translator.from_checkpoint(args.checkpoint, device=args.device)
    if args.max_len_a is not None:
        translator.search.max_len_a = args.max_len_a
    if args.max_len_b is not None:
        translator.search.max_len_b = args.max_len_b
    if args.length_penalty is not None:
        translator.search.length_penalty = args.length_penalty
    return translator


def _interactive(translator, args: argparse.Namespace) -> int:
    print(f"seq2seq {__version__}: type a sentence and press Enter; Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        for text, score in translator.translate_hypotheses([line], beam=args.beam, nbest=args.nbest)[0]:
            print(f"{_clean_line(text)}\t{score:.4f}" if args.nbest > 1 else _clean_line(text), flush=True)


def cmd_translate(args: argparse.Namespace) -> int:
    if args.nbest < 1:
        raise Seq2SeqError("--nbest must be at least 1")
    if args.beam is not None and args.nbest > args.beam:
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed --beam ({args.beam})")
    translator = _load_translator(args)
    if args.input is None and sys.stdin.isatty():
        return _interactive(translator, args)
    lines = _read_input_lines(args.input)
    results = translator.translate_hypotheses(
        lines, beam=args.beam, nbest=args.nbest, batch_tokens=args.batch_tokens, progress=not args.quiet
    )
    with _atomic_output(args.output) as out:
        for index, hyps in enumerate(results):
            if args.nbest == 1:
                out.write(_clean_line(hyps[0][0]) + "\n")
            else:
                # n-best: one line per hypothesis, "INDEX<TAB>SCORE<TAB>TEXT", INDEX = input line from 0.
                for text, score in hyps:
                    out.write(f"{index}\t{score:.4f}\t{_clean_line(text)}\n")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seq2seq.data.textio import read_lines
    from seq2seq.metrics import bleu, chrf

    sources = read_lines(args.src)
    references = read_lines(args.ref)
    if len(sources) != len(references):
        raise Seq2SeqError(
            f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}; "
            "source and reference must be line-aligned"
        )
    translator = _load_translator(args)
    hyps = translator.translate(sources, beam=args.beam, batch_tokens=args.batch_tokens, progress=not args.quiet)
    if args.output:
        with _atomic_output(args.output) as out:
            out.writelines(_clean_line(h) + "\n" for h in hyps)
    b = bleu(hyps, references)
    c = chrf(hyps, references)
    print(b)
    print(c)
    if args.lowercase_bleu:
        print(bleu(hyps, references, tokenize="13a", lowercase=True))
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import join_checkpoints

    out = join_checkpoints(args.encoder, args.decoder, args.output)
    print(f"joined the encoder of {args.encoder} and the decoder of {args.decoder} into {out}")
    return 0


# ------------------------------------------------------------------ parser
def _add_decoding_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="checkpoint directory written by 'seq2seq train' (e.g. runs/NAME/best)")
    p.add_argument("--beam", type=int, default=None, metavar="N",
                   help="beam size (1 = greedy); default: the checkpoint's search.beam")
    p.add_argument("--batch-tokens", type=int, default=None, metavar="N",
                   help="source tokens per decoding batch; default: the checkpoint's search.batch_tokens")
    p.add_argument("--length-penalty", type=float, default=None, metavar="A",
                   help="rank hypotheses by log-prob / length**A (default: the checkpoint's)")
    p.add_argument("--max-len-a", type=float, default=None, metavar="A",
                   help="maximum output length = A * source length + B")
    p.add_argument("--max-len-b", type=int, default=None, metavar="B", help="see --max-len-a")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq",
        description="Encoder-decoder sequence models: train, translate, evaluate, join.",
        epilog="Run 'seq2seq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train a model described by a YAML config. Checkpoints go to "
                                   "train.output_dir (best/, last/), with a JSON-lines log.")
    p.add_argument("config", help="YAML config file (see recipes/*/ for examples)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.lr=5e-4 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in train.output_dir from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("translate", help="translate raw text lines with a checkpoint",
                       description="Read raw text lines (stdin or --input) and write one detokenized "
                                   "translation per line, in order. Interactive when stdin is a terminal.")
    _add_decoding_flags(p)
    p.add_argument("--nbest", type=int, default=1, metavar="N",
                   help="write the N best hypotheses per input as 'SCORE<TAB>TEXT' lines (N <= beam)")
    p.add_argument("--input", "-i", default=None, metavar="FILE", help="input file (default: stdin)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="output file (default: stdout)")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("evaluate", help="translate a test set and print BLEU and chrF",
                       description="Translate --src and score against --ref with sacreBLEU "
                                   "(detokenized, cased BLEU and chrF, with signatures).")
    _add_decoding_flags(p)
    p.add_argument("--src", required=True, metavar="FILE", help="source text, one sentence per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference translations, line-aligned with --src")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the translations here")
    p.add_argument("--lowercase-bleu", action="store_true",
                   help="also print tokenized lowercase BLEU (13a, lowercase) to compare with older papers")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("join", help="one checkpoint from the encoder of one and the decoder of another",
                       description="Join the encoder part of one checkpoint and the decoder part of another "
                                   "(same architecture) into a new checkpoint, without training: the "
                                   "staged regime. Fine-tune it with train.init_encoder/init_decoder.")
    p.add_argument("--encoder", required=True, metavar="DIR", help="checkpoint whose encoder (and source tokenizer) to take")
    p.add_argument("--decoder", required=True, metavar="DIR", help="checkpoint whose decoder (and target tokenizer) to take")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="directory of the joined checkpoint")
    p.set_defaults(func=cmd_join)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("datasets", "fsspec", "filelock", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"seq2seq: warning: {msg}\n"
    try:
        return args.func(args)
    except Seq2SeqError as e:
        if args.verbose:
            raise
        print(f"seq2seq: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seq2seq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
