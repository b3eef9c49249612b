"""The ``seq2seq`` command. Thin: it parses flags, reads/writes files and calls the library.

User errors (bad files, configs, checkpoints, option values) print one line,
``seq2seq: error: ...``, and exit with status 2; an unexpected exception (a bug) prints one line
too and exits with 1 (``-v`` shows the traceback); Ctrl-C exits with 130. Output files are
written to a temporary name and renamed when complete, so a failed or interrupted run never
leaves a half-written output. Per-line commands (translate, reconstruct, encode, score,
classify) give exactly one output line (or row) per input line, in order.
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
    if sys.stdin is None:  # started with stdin closed
        raise Seq2SeqError("no input: stdin is closed; give --input FILE")
    return decode_lines(sys.stdin.buffer.read(), "<stdin>")


@contextmanager
def _checkpoint_errors(directory: str, action: str = "") -> Iterator[None]:
    """Turn the exceptions of a checkpoint whose files do not fit this version (hand-edited,
    or written by another one) into one CheckpointError naming the directory."""
    from seq2seq.errors import CheckpointError

    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(
            f"cannot {action or 'load checkpoint ' + directory}: {type(e).__name__}"
            f"{': ' + reason if reason else ''}; its files do not fit this seq2seq ({__version__}): "
            "use the version that wrote it, or another checkpoint"
        ) from None


@contextmanager
def _atomic_path(path: str, suffix: str = "") -> Iterator[Path]:
    """A temporary path that is renamed to ``path`` only when the block completes."""
    target = Path(path)
    if target.is_dir():
        raise Seq2SeqError(f"--output {target} is a directory; give a file name")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        raise Seq2SeqError(f"cannot write {target}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _atomic_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text stream that becomes ``path`` only when the block completes (stdout when None)."""
    if not path or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with _atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


# Everything str.splitlines() breaks at: none may appear inside an output line.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def _clean_line(text: str) -> str:
    """Outputs go one per line: never let a line break inside one (``\\n``, ``\\r``, or any
    other character ``str.splitlines`` splits at) break the alignment with the input."""
    return text.translate(_LINE_BREAKS)


def _check_decoding_flags(args: argparse.Namespace) -> None:
    """Refuse option values that would crash or never finish, naming the option."""
    import math

    if getattr(args, "beam", None) is not None and args.beam < 1:
        raise Seq2SeqError(f"--beam must be at least 1 (1 = greedy), got {args.beam}")
    if getattr(args, "quantize", None) and getattr(args, "precision", "fp32") != "fp32":
        raise Seq2SeqError(f"--quantize {args.quantize} cannot be combined with --precision {args.precision}: "
                           "int8 decoding keeps the rest of the model in fp32; drop one of them")
    for flag in ("batch_tokens", "batch_rows"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise Seq2SeqError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    for flag in ("max_len_a", "length_penalty"):
        value = getattr(args, flag, None)
        if value is not None and not math.isfinite(value):
            raise Seq2SeqError(f"--{flag.replace('_', '-')} must be a finite number, got {value}")
    if getattr(args, "max_len_a", None) is not None and args.max_len_a < 0:
        raise Seq2SeqError(f"--max-len-a must be >= 0, got {args.max_len_a}")
    if getattr(args, "min_len", None) is not None and args.min_len < 0:
        raise Seq2SeqError(f"--min-len must be >= 0, got {args.min_len}")


# --------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from seq2seq.config import load_config
    from seq2seq.train.trainer import Trainer

    task = getattr(args, "task", None)  # pretrain / classify-train: the task they are for
    cfg = load_config(args.config, args.set, default_task=task)
    if task and cfg.task != task:
        raise Seq2SeqError(f"{args.config} says task: {cfg.task}; 'seq2seq {args.command}' trains task {task} "
                           f"(use 'seq2seq train' for any task)")
    result = Trainer(cfg, resume=args.resume).fit()
    print(f"best valid {result.metric}: {result.best_score}  ({result.steps} updates, {result.seconds:.0f} s)")
    print(f"checkpoints: {result.output_dir / 'best'} and {result.output_dir / 'last'}")
    return 0


def _load_translator(args: argparse.Namespace):
    from seq2seq.infer.translator import Translator

    _check_decoding_flags(args)
    with _checkpoint_errors(args.checkpoint):
        try:
            translator = Translator.from_checkpoint(args.checkpoint, device=args.device, quantize=args.quantize,
                                                    precision=args.precision)
        except ValueError as e:
            raise Seq2SeqError(f"--quantize: {e}; use --device cpu") from None
    _apply_search_flags(translator.search, args)
    return translator


def _apply_search_flags(search, args: argparse.Namespace) -> None:
    """--min-len, --max-len-a/b, --length-penalty, --batch-tokens/rows over the checkpoint's search settings."""
    for flag in ("min_len", "max_len_a", "max_len_b", "length_penalty", "batch_tokens", "batch_rows"):
        if getattr(args, flag, None) is not None:
            setattr(search, flag, getattr(args, flag))


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
            hyps = translator.translate_hypotheses([line], beam=args.beam, nbest=args.nbest, strict=args.strict)[0]
        except Seq2SeqError as e:  # --strict: this line is refused, the session goes on
            print(f"seq2seq: error: {e}", file=sys.stderr)
            continue
        for text, score in hyps:
            print(f"{_clean_line(text)}\t{score:.4f}" if args.nbest > 1 else _clean_line(text), flush=True)


def cmd_translate(args: argparse.Namespace) -> int:
    _check_decoding_flags(args)
    if args.nbest < 1:
        raise Seq2SeqError("--nbest must be at least 1")
    if args.beam is not None and args.nbest > args.beam:
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed --beam ({args.beam})")
    translator = _load_translator(args)
    if args.nbest > translator.search.beam and args.beam is None:
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed the checkpoint's beam "
                           f"({translator.search.beam}); give --beam too")
    if args.input is None and sys.stdin is not None and sys.stdin.isatty():
        return _interactive(translator, args)
    lines = _read_input_lines(args.input)
    results = translator.translate_hypotheses(
        lines, beam=args.beam, nbest=args.nbest, batch_tokens=args.batch_tokens, progress=not args.quiet,
        strict=args.strict,
    )
    with _atomic_output(args.output) as out:
        for index, hyps in enumerate(results):
            if args.nbest == 1:
                out.write(_clean_line(hyps[0][0]) + "\n")
            else:
                # n-best: one line per hypothesis, "INDEX<TAB>SCORE<TAB>TEXT", INDEX = input line from 0.
                for text, score in hyps:
                    out.write(f"{index}\t{score:.4f}\t{_clean_line(text)}\n")
    if args.plot_attention:
        from seq2seq.infer.attention_maps import write_attention_maps

        count = write_attention_maps(translator, lines, [h[0][0] for h in results], Path(args.plot_attention))
        print(f"wrote {count} attention map(s) to {args.plot_attention}", file=sys.stderr)
    return 0


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
    translator = _load_translator(args)
    hyps = translator.translate(sources, beam=args.beam, batch_tokens=args.batch_tokens, progress=not args.quiet,
                                strict=args.strict)
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


def _autoencoder(args: argparse.Namespace):
    from seq2seq.infer.autoencoder import Autoencoder

    _check_decoding_flags(args)
    with _checkpoint_errors(args.checkpoint):
        return Autoencoder.from_checkpoint(args.checkpoint, device=args.device)


def _weights_hash(directory: str) -> str:
    from seq2seq.checkpoint import weights_hash

    with _checkpoint_errors(directory):
        return weights_hash(directory)


def _write_npy(path: str, array) -> None:
    """Save a .npy file atomically (temporary name, then rename)."""
    import numpy as np

    with _atomic_path(path, ".npy") as tmp:
        np.save(tmp, array)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    ae = _autoencoder(args)
    _apply_search_flags(ae.cfg.search, args)
    lines = _read_input_lines(args.input)
    outputs = ae.reconstruct(lines, beam=args.beam, progress=not args.quiet)
    with _atomic_output(args.output) as out:
        out.writelines(_clean_line(text) + "\n" for text in outputs)
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    if not args.output:
        raise Seq2SeqError("--output FILE.npy is required (where to write the vectors)")
    ae = _autoencoder(args)
    lines = _read_input_lines(args.input)
    if args.bits:
        array = ae.codes(lines, progress=not args.quiet).astype("uint8")
    else:
        array = ae.encode(lines, progress=not args.quiet)
    _write_npy(args.output, array)
    print(f"wrote {array.shape[0]:,} x {array.shape[1]} {'bits' if args.bits else 'vectors'} to {args.output}",
          file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    if args.threshold is not None and args.percentile is not None:
        raise Seq2SeqError("give --threshold or --percentile, not both")
    if args.percentile is not None and not 0 < args.percentile < 100:
        raise Seq2SeqError("--percentile must be between 0 and 100 (e.g. 95 flags the top 5%)")
    if args.threshold is not None and not np.isfinite(args.threshold):
        raise Seq2SeqError(f"--threshold must be a finite number of nats, got {args.threshold}")
    ae = _autoencoder(args)
    lines = _read_input_lines(args.input)
    scores = ae.score(lines, progress=not args.quiet)  # (N, 3): total, tokens, per token
    per_token = scores[:, 2]
    threshold = args.threshold
    if args.percentile is not None:
        if np.isfinite(per_token).any():
            threshold = float(np.nanpercentile(per_token, args.percentile))
        else:  # keep the flag column: nothing to flag
            threshold = math.inf
            warnings.warn("no input line has a score (all are empty): none is flagged", stacklevel=1)
    with _atomic_output(args.output) as out:
        if args.header:
            out.write("per_token\ttotal\ttokens" + ("\tflag" if threshold is not None else "") + "\n")
        for total, tokens, mean in scores:
            row = f"{mean:.4f}\t{total:.4f}\t{int(tokens) if np.isfinite(tokens) else 0}"
            if threshold is not None:
                row += "\t" + ("1" if np.isfinite(mean) and mean > threshold else "0")
            out.write(row + "\n")
    if threshold is not None:
        flagged = int(np.sum(per_token > threshold))
        print(f"threshold {threshold:.4f} nats/token: {flagged:,} of {len(lines):,} lines flagged", file=sys.stderr)
    return 0


def cmd_hash(args: argparse.Namespace) -> int:
    from seq2seq.infer.hashing import CodeIndex

    if not args.output:
        raise Seq2SeqError("--output FILE.npz is required (where to write the index)")
    ae = _autoencoder(args)
    lines = _read_input_lines(args.input)
    fingerprint = _weights_hash(args.checkpoint)
    if args.real:
        index = CodeIndex.from_vectors(ae.encode(lines, progress=not args.quiet), lines, fingerprint)
    else:
        index = CodeIndex.from_codes(ae.codes(lines, progress=not args.quiet), lines, fingerprint)
    index.save(args.output)
    what = "context vectors (cosine)" if args.real else f"{index.bits}-bit codes"
    print(f"indexed {len(index):,} lines as {what} in {args.output}", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from seq2seq.infer.hashing import CodeIndex

    if args.top is not None and args.top < 1:
        raise Seq2SeqError("--top must be at least 1")
    if args.radius is not None and args.radius < 0:
        raise Seq2SeqError("--radius must be >= 0")
    index = CodeIndex.load(args.index)
    if index.model_hash and index.model_hash != _weights_hash(args.checkpoint):
        raise Seq2SeqError(f"{args.index} was built with another checkpoint's codes than {args.checkpoint}; "
                           "query with the checkpoint that built it (or rebuild the index)")
    ae = _autoencoder(args)
    queries = _read_input_lines(args.input)
    if not len(index):
        warnings.warn(f"{args.index} holds no lines: no query can match", stacklevel=1)
    if index.kind == "real":
        if args.radius is not None:
            raise Seq2SeqError("--radius is for binary-code indexes; this one holds real vectors (use --top)")
        vectors = ae.encode(queries)
        results = [[(i, f"{sim:.4f}") for i, sim in index.nearest(v, args.top or 10)] for v in vectors]
    else:
        codes = ae.codes(queries)
        if args.top is not None:
            results = [[(i, str(d)) for i, d in index.rank(c, args.top)] for c in codes]
        else:
            radius = 2 if args.radius is None else args.radius
            results = [[(i, str(d)) for i, d in index.lookup(c, radius)] for c in codes]
    # A query without tokens has a zero vector / code, not a meaning: it matches nothing.
    results = [r if ok else [] for r, ok in zip(results, ae.has_tokens(queries))]
    with _atomic_output(args.output) as out:
        # One line per match: QUERY<TAB>DISTANCE_OR_SIMILARITY<TAB>CORPUS_LINE<TAB>TEXT (lines from 1).
        for q, matches in enumerate(results, start=1):
            for i, dist in matches:
                out.write(f"{q}\t{dist}\t{i + 1}\t{_clean_line(index.lines[i])}\n")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if args.max_len < 1:
        raise Seq2SeqError(f"--max-len must be at least 1, got {args.max_len}")
    ae = _autoencoder(args)
    if args.interpolate:
        lines = ae.interpolate(args.interpolate[0], args.interpolate[1], steps=args.steps, max_len=args.max_len)
    else:
        if args.n < 1:
            raise Seq2SeqError("-n must be at least 1")
        lines = ae.sample(args.n, seed=args.seed, max_len=args.max_len)
    with _atomic_output(args.output) as out:
        out.writelines(_clean_line(text) + "\n" for text in lines)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    ae = _autoencoder(args)
    lines = _read_input_lines(args.input)
    labels, probs = ae.classify(lines, progress=not args.quiet)
    with _atomic_output(args.output) as out:
        for label, p in zip(labels, probs):
            label = _clean_line(label)
            out.write(f"{label}\t{p.max():.4f}\n" if args.probability else f"{label}\n")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import average_checkpoints, last_checkpoints

    if bool(args.checkpoints) == bool(args.run):
        raise Seq2SeqError("give either checkpoint directories or --run DIR (with --last N), not both")
    directories = [Path(d) for d in args.checkpoints] or last_checkpoints(args.run, args.last)
    if Path(args.output).resolve() in {d.resolve() for d in directories}:
        raise Seq2SeqError(f"--output {args.output} is one of the checkpoints to average; give a new directory")
    with _checkpoint_errors(str(directories[-1]), "average the checkpoints"):
        path = average_checkpoints(directories, args.output)
    print(f"averaged {len(directories)} checkpoints ({', '.join(d.name for d in directories)}) into {path}",
          file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from seq2seq.plots import plot_learning_curves

    path = plot_learning_curves([Path(r) for r in args.runs], Path(args.output))
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import join_checkpoints

    # join_checkpoints refuses an output that is not a checkpoint and an encoder without a decoder.
    with _checkpoint_errors(args.encoder, f"join {args.encoder} and {args.decoder}"):
        out = join_checkpoints(args.encoder, args.decoder, args.output)
    print(f"joined the encoder of {args.encoder} and the decoder of {args.decoder} into {out}")
    return 0


# ------------------------------------------------------------------ parser
def _add_decoding_flags(p: argparse.ArgumentParser, quantize: bool = True) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="checkpoint directory written by 'seq2seq train' (e.g. runs/NAME/best)")
    p.add_argument("--beam", type=int, default=None, metavar="N",
                   help="beam size (1 = greedy); default: the checkpoint's search.beam")
    p.add_argument("--batch-tokens", type=int, default=None, metavar="N",
                   help="source tokens per decoding batch; default: the checkpoint's search.batch_tokens")
    p.add_argument("--batch-rows", type=int, default=None, metavar="N",
                   help="hypotheses (sentences x beam) per decoding batch; default: the checkpoint's "
                        "search.batch_rows")
    p.add_argument("--length-penalty", type=float, default=None, metavar="A",
                   help="rank hypotheses by log-prob / length**A (default: the checkpoint's)")
    p.add_argument("--max-len-a", type=float, default=None, metavar="A",
                   help="maximum output length = A * source length + B")
    p.add_argument("--max-len-b", type=int, default=None, metavar="B", help="see --max-len-a")
    p.add_argument("--min-len", type=int, default=None, metavar="N",
                   help="no end of sentence before N output tokens (default: the checkpoint's search.min_len)")
    if quantize:
        p.add_argument("--quantize", choices=["int8"], default=None,
                       help="int8 dynamic quantization of the linear and GRU layers (CPU decoding: faster, "
                            "smaller; check the BLEU on your data)")
        p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                       help="weights and activations in this type (default fp32): bf16/fp16 for GPUs; bf16 "
                            "also on CPUs with native bf16")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_strict_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="refuse input the model was not trained to read (characters its source vocabulary "
                        "does not have, sources longer than any in training; for digits models, text that is "
                        "not a number): exit 2 and write nothing. "
                        "Without it such lines are translated all the same, with one warning listing them")


def _add_encoder_flags(p: argparse.ArgumentParser, output_help: str = "output file (default: stdout)") -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint directory (e.g. runs/NAME/best)")
    p.add_argument("--input", "-i", default=None, metavar="FILE", help="input lines (default: stdin)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help=output_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_parser(sub, name: str, task: Optional[str], help: str, description: str) -> None:
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("config", help="YAML config file (see recipes/*/ for examples)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.lr=5e-4 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in train.output_dir from its last checkpoint")
    p.set_defaults(func=cmd_train, task=task)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq",
        description="Encoder-decoder sequence models: translation, sequence autoencoders, classifiers.",
        epilog="Run 'seq2seq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"seq2seq {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_train_parser(sub, "train", None, "train a model from a YAML config (any task)",
                      "Train a model described by a YAML config. Checkpoints go to train.output_dir "
                      "(best/, last/), with a JSON-lines log.")
    _add_train_parser(sub, "pretrain", "autoencoder", "train a sequence autoencoder on monolingual text",
                      "Train a (denoising / variational / binary-code) sequence autoencoder: task "
                      "autoencoder, the default for this command. Attention is off unless the config "
                      "turns it on. See recipes/autoencoder/.")
    _add_train_parser(sub, "classify-train", "classification", "train a sentence classifier (sentence<TAB>label)",
                      "Train a classifier head on an encoder (task classification, the default for this "
                      "command); start from a pretrained encoder with train.init_encoder and keep it fixed "
                      "with train.freeze: [encoder].")

    p = sub.add_parser("translate", help="translate raw text lines with a checkpoint",
                       description="Read raw text lines (stdin or --input) and write one detokenized "
                                   "translation per line, in order. Interactive when stdin is a terminal.")
    _add_decoding_flags(p)
    _add_strict_flag(p)
    p.add_argument("--nbest", type=int, default=1, metavar="N",
                   help="write the N best hypotheses per input as 'INDEX<TAB>SCORE<TAB>TEXT' lines "
                        "(INDEX: the input line, from 0; N <= beam)")
    p.add_argument("--input", "-i", default=None, metavar="FILE", help="input file (default: stdin)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--plot-attention", default=None, metavar="DIR",
                   help="also draw one attention heat map per input line, DIR/LINE.png (source tokens "
                        "against output tokens; needs matplotlib and a model with attention)")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("evaluate", help="translate a test set and print BLEU and chrF",
                       description="Translate --src and score against --ref with sacreBLEU "
                                   "(detokenized, cased BLEU and chrF, with signatures).")
    _add_decoding_flags(p)
    _add_strict_flag(p)
    p.add_argument("--src", required=True, metavar="FILE", help="source text, one sentence per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference translations, line-aligned with --src")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="also write the translations here")
    p.add_argument("--lowercase-bleu", action="store_true",
                   help="also print tokenized lowercase BLEU (13a, lowercase) to compare with older papers")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("average", help="average the weights of several checkpoints (e.g. the last N of a run)",
                       description="Write one checkpoint whose weights are the mean of several checkpoints' "
                                   "(same model and SentencePiece models), e.g. the last N step-N/ "
                                   "checkpoints of a run: often worth a fraction of a BLEU point.")
    p.add_argument("checkpoints", nargs="*", metavar="DIR", help="checkpoint directories to average")
    p.add_argument("--run", metavar="DIR", help="a training run's output_dir: average its last --last step-N/ checkpoints")
    p.add_argument("--last", type=int, default=5, metavar="N",
                   help="with --run: how many (default 5; the run needs train.keep_last >= N)")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="directory of the averaged checkpoint")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("plot", help="learning curves of training runs as a PNG",
                       description="Plot training loss, validation loss, validation BLEU (or accuracy) and "
                                   "learning rate against updates, one line per run (needs matplotlib).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="a run's output_dir or its train_log.jsonl")
    p.add_argument("--output", "-o", required=True, metavar="PNG", help="the image to write")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("join", help="one checkpoint from the encoder of one and the decoder of another",
                       description="Join the encoder part of one checkpoint and the decoder part of another "
                                   "(same architecture) into a new checkpoint, without training: the "
                                   "staged regime. Fine-tune it with train.init_encoder/init_decoder.")
    p.add_argument("--encoder", required=True, metavar="DIR", help="checkpoint whose encoder (and source tokenizer) to take")
    p.add_argument("--decoder", required=True, metavar="DIR", help="checkpoint whose decoder (and target tokenizer) to take")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="directory of the joined checkpoint")
    p.set_defaults(func=cmd_join)

    p = sub.add_parser("reconstruct", help="autoencoder: input lines -> reconstructed lines",
                       description="Pass each line through the autoencoder's bottleneck and decode it.")
    _add_decoding_flags(p, quantize=False)
    p.add_argument("--input", "-i", default=None, metavar="FILE", help="input file (default: stdin)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="output file (default: stdout)")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("encode", help="one context vector per input line, to a .npy file",
                       description="Write the encoder's context vector for every input line as a (lines, dim) "
                                   "float32 .npy array, in input order (any checkpoint: autoencoder, "
                                   "translation, classifier). Empty lines give zero vectors.")
    _add_encoder_flags(p, "the .npy file to write (required)")
    p.add_argument("--bits", action="store_true", help="binary codes (uint8 0/1) instead of real vectors")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("score", help="autoencoder: per-line reconstruction loss (anomaly scores)",
                       description="Write 'per_token<TAB>total<TAB>tokens' (nats) per input line, one output "
                                   "line per input line: the clean line's reconstruction loss. High per-token "
                                   "loss = unlike the training text; empty lines give 'nan<TAB>nan<TAB>0'. "
                                   "--threshold or --percentile adds a 0/1 flag column; --header a first "
                                   "line naming the columns.")
    _add_encoder_flags(p)
    p.add_argument("--header", action="store_true",
                   help="write a header line 'per_token<TAB>total<TAB>tokens[<TAB>flag]' first")
    p.add_argument("--threshold", type=float, default=None, metavar="NATS",
                   help="flag lines whose per-token loss is above NATS")
    p.add_argument("--percentile", type=float, default=None, metavar="P",
                   help="flag lines above the P-th percentile of this input's per-token losses")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("hash", help="index a corpus by binary codes (or context vectors)",
                       description="Encode every corpus line to a binary code (model.bottleneck: binary) "
                                   "or, with --real, to its context vector, and write an index file for "
                                   "'seq2seq search'.")
    _add_encoder_flags(p, "index file to write (.npz)")
    p.add_argument("--real", action="store_true", help="index real-valued context vectors (cosine search)")
    p.set_defaults(func=cmd_hash)

    p = sub.add_parser("search", help="query an index: lines within a Hamming radius, or nearest neighbours",
                       description="For each query line print 'QUERY<TAB>DISTANCE<TAB>LINE<TAB>TEXT' for its "
                                   "matches (query and corpus lines numbered from 1). Binary index: the "
                                   "lines within --radius bits (hash lookups; default 2), or the --top K "
                                   "nearest by Hamming distance. Real index: the --top K (default 10) by "
                                   "cosine similarity.")
    _add_encoder_flags(p)
    p.add_argument("--index", required=True, metavar="FILE", help="index written by 'seq2seq hash'")
    p.add_argument("--radius", type=int, default=None, metavar="R", help="Hamming radius (binary index)")
    p.add_argument("--top", type=int, default=None, metavar="K", help="the K nearest lines")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("sample", help="variational autoencoder: sentences from the prior, or interpolation",
                       description="Decode sentences from z ~ N(0, I), or along the line between two "
                                   "sentences' codes (--interpolate A B).")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint directory")
    p.add_argument("-n", type=int, default=10, help="number of samples (default 10)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--interpolate", nargs=2, metavar=("FIRST", "SECOND"), help="two sentences")
    p.add_argument("--steps", type=int, default=5, help="interpolation points, ends included (default 5)")
    p.add_argument("--max-len", type=int, default=60, help="maximum output tokens")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("classify", help="classifier: one label per input line",
                       description="Write the predicted label of every input line (classifier checkpoints).")
    _add_encoder_flags(p)
    p.add_argument("--probability", action="store_true", help="write 'LABEL<TAB>PROBABILITY'")
    p.set_defaults(func=cmd_classify)
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
        print(f"seq2seq: error: unexpected {type(e).__name__}{': ' + detail if detail else ''} "
              "(a bug in seq2seq: rerun with -v for the traceback and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
