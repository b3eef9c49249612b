"""The parser, made from each command family's ``add_parsers``, and the net that turns every
error into one line and an exit status (see :mod:`seq2seq.cli`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from typing import Optional

from seq2seq import __version__
from seq2seq.allocator import reexec_on_jemalloc
from seq2seq.errors import Seq2SeqError

# The command modules of seq2seq.cli, in help order; each declares its commands in add_parsers(sub).
FAMILIES = ("train", "prepare", "translate", "evaluate", "checkpoints", "encode", "serve")


def build_parser() -> argparse.ArgumentParser:
    """The ``seq2seq`` parser: global flags and one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="seq2seq",
        description="Encoder-decoder sequence models: translation, sequence autoencoders, classifiers.",
        epilog="Run 'seq2seq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in FAMILIES:
        importlib.import_module(f"seq2seq.cli.{family}").add_parsers(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run one ``seq2seq`` command; returns the exit status (0, 2 for a user error, 1 for a bug,
    130 on Ctrl-C, 141 on a closed pipe)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if argv is None and getattr(args.func, "__name__", "") == "cmd_train":  # a command line, not main() from Python
        try:
            reexec_on_jemalloc()  # returns only where it does not re-execute (see seq2seq.allocator)
        except Seq2SeqError as e:
            print(f"seq2seq: error: {e}", file=sys.stderr)
            return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
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
    except OSError as e:  # the last net: a file the library did not expect to fail (disk full, ...)
        if args.verbose:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"seq2seq: error: {where}{e.strerror or e} (check free disk space and permissions)", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not a user error: still one line; -v shows the traceback
        if args.verbose:
            raise
        detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        print(
            f"seq2seq: error: unexpected {type(e).__name__}{': ' + detail if detail else ''} "
            "(a bug in seq2seq: rerun with -v for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1
