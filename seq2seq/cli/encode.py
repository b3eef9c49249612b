"""Commands that use a checkpoint's encoder (and decoder) on text lines: reconstruct, encode,
score, hash, search, sample, classify. On checkpoints that read images or vectors, encode,
reconstruct and score take arrays and image files (:mod:`seq2seq.cli.images`)."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import Any, Optional

from seq2seq.cli.decoding import add_decoding_flags, decoding_settings
from seq2seq.cli.images import (
    encode_images,
    hash_images,
    reads_items,
    reconstruct_images,
    score_images,
    search_images,
)
from seq2seq.cli.inputs import read_input_lines
from seq2seq.cli.io import add_checkpoint_flag, add_device_flag, add_io_flags, checkpoint_errors
from seq2seq.cli.output import atomic_output, clean_line, write_npy
from seq2seq.config import SearchConfig
from seq2seq.errors import Seq2SeqError


def _autoencoder(args: argparse.Namespace, search: Optional[SearchConfig] = None):
    from seq2seq.infer.autoencoder import Autoencoder

    with checkpoint_errors(args.checkpoint):
        return Autoencoder.from_checkpoint(args.checkpoint, device=args.device, search=search)


def _weights_hash(directory: str) -> str:
    from seq2seq.checkpoint import weights_hash

    with checkpoint_errors(directory):
        return weights_hash(directory)


def _add_encoder_flags(p: argparse.ArgumentParser, output_help: str = "output file (default: stdout)") -> None:
    add_checkpoint_flag(p)
    add_io_flags(p, "input lines (default: stdin)", output_help)
    add_device_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------- reconstruct
def cmd_reconstruct(args: argparse.Namespace) -> int:
    if reads_items(args.checkpoint):
        return reconstruct_images(args)
    ae = _autoencoder(args, decoding_settings(args))
    lines = read_input_lines(args.input)
    outputs = ae.reconstruct(lines, progress=not args.quiet)
    with atomic_output(args.output) as out:
        out.writelines(clean_line(text) + "\n" for text in outputs)
    return 0


def _add_reconstruct(sub: Any) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="autoencoder: input lines -> reconstructed lines (image autoencoder: images)",
        description="Pass each line through the autoencoder's bottleneck and decode it. An image "
        "autoencoder reads --input FILE.npy or a list of image files and writes --output FILE.npy "
        "or a directory of PNG files (docs/images.md).",
    )
    add_decoding_flags(p)
    add_device_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_io_flags(p)
    p.set_defaults(func=cmd_reconstruct)


# ---------------------------------------------------------------- encode
def cmd_encode(args: argparse.Namespace) -> int:
    if not args.output:
        raise Seq2SeqError("--output FILE.npy is required (where to write the vectors)")
    if reads_items(args.checkpoint):
        return encode_images(args)
    ae = _autoencoder(args)
    lines = read_input_lines(args.input)
    if args.bits:
        array = ae.codes(lines, progress=not args.quiet).astype("uint8")
    else:
        array = ae.encode(lines, progress=not args.quiet)
    write_npy(args.output, array)
    print(
        f"wrote {array.shape[0]:,} x {array.shape[1]} {'bits' if args.bits else 'vectors'} to {args.output}",
        file=sys.stderr,
    )
    return 0


def _add_encode(sub: Any) -> None:
    p = sub.add_parser(
        "encode",
        help="one context vector per input line (or image), to a .npy file",
        description="Write the encoder's context vector for every input line as a (lines, dim) "
        "float32 .npy array, in input order (any checkpoint: autoencoder, "
        "translation, classifier). Empty lines give zero vectors.",
    )
    _add_encoder_flags(p, "the .npy file to write (required)")
    p.add_argument("--bits", action="store_true", help="binary codes (uint8 0/1) instead of real vectors")
    p.set_defaults(func=cmd_encode)


# ---------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> int:
    import numpy as np

    if args.threshold is not None and args.percentile is not None:
        raise Seq2SeqError("give --threshold or --percentile, not both")
    if args.percentile is not None and not 0 < args.percentile < 100:
        raise Seq2SeqError("--percentile must be between 0 and 100 (e.g. 95 flags the top 5%)")
    if args.threshold is not None and not np.isfinite(args.threshold):
        raise Seq2SeqError(f"--threshold must be a finite number, got {args.threshold}")

    def threshold_of(values: np.ndarray) -> Optional[float]:
        if args.percentile is None:
            return args.threshold
        if np.isfinite(values).any():
            return float(np.nanpercentile(values, args.percentile))
        warnings.warn("no input line has a score (all are empty): none is flagged", stacklevel=1)
        return math.inf  # keep the flag column: nothing to flag

    if reads_items(args.checkpoint):
        return score_images(args, threshold_of)
    ae = _autoencoder(args)
    lines = read_input_lines(args.input)
    scores = ae.score(lines, progress=not args.quiet)  # (N, 3): total, tokens, per token
    per_token = scores[:, 2]
    threshold = threshold_of(per_token)
    with atomic_output(args.output) as out:
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


def _add_score(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="autoencoder: per-line reconstruction loss (anomaly scores; images: MSE per image)",
        description="Write 'per_token<TAB>total<TAB>tokens' (nats) per input line, one output "
        "line per input line: the clean line's reconstruction loss. High per-token "
        "loss = unlike the training text; empty lines give 'nan<TAB>nan<TAB>0'. "
        "--threshold or --percentile adds a 0/1 flag column; --header a first "
        "line naming the columns. An image autoencoder writes 'mse' per image (the mean squared "
        "error per pixel of its reconstruction; --input FILE.npy or a list of image files).",
    )
    _add_encoder_flags(p)
    p.add_argument(
        "--header", action="store_true", help="write a header line 'per_token<TAB>total<TAB>tokens[<TAB>flag]' first"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="NATS",
        help="flag lines whose per-token loss (images: MSE) is above NATS",
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=None,
        metavar="P",
        help="flag lines above the P-th percentile of this input's per-token losses",
    )
    p.set_defaults(func=cmd_score)


# ---------------------------------------------------------------- hash
def _text_only(args: argparse.Namespace) -> None:
    if reads_items(args.checkpoint):
        raise Seq2SeqError(
            f"seq2seq {args.command} reads text lines; {args.checkpoint} reads images or vectors "
            "(encode, reconstruct, score, hash and search take them: docs/images.md)"
        )


def cmd_hash(args: argparse.Namespace) -> int:
    from seq2seq.infer.hashing import CodeIndex

    if reads_items(args.checkpoint):
        return hash_images(args, _weights_hash(args.checkpoint))
    if not args.output:
        raise Seq2SeqError("--output FILE.npz is required (where to write the index)")
    ae = _autoencoder(args)
    lines = read_input_lines(args.input)
    fingerprint = _weights_hash(args.checkpoint)
    if args.real:
        index = CodeIndex.from_vectors(ae.encode(lines, progress=not args.quiet), lines, fingerprint)
    else:
        index = CodeIndex.from_codes(ae.codes(lines, progress=not args.quiet), lines, fingerprint)
    index.save(args.output)
    what = "context vectors (cosine)" if args.real else f"{index.bits}-bit codes"
    print(f"indexed {len(index):,} lines as {what} in {args.output}", file=sys.stderr)
    return 0


def _add_hash(sub: Any) -> None:
    p = sub.add_parser(
        "hash",
        help="index a corpus by binary codes (or context vectors)",
        description="Encode every corpus line to a binary code (model.bottleneck: binary) "
        "or, with --real, to its context vector, and write an index file for "
        "'seq2seq search'. A checkpoint that reads images takes --input FILE.npy or a list of "
        "image files (docs/images.md).",
    )
    _add_encoder_flags(p, "index file to write (.npz)")
    p.add_argument("--real", action="store_true", help="index real-valued context vectors (cosine search)")
    p.set_defaults(func=cmd_hash)


# ---------------------------------------------------------------- search
def cmd_search(args: argparse.Namespace) -> int:
    from seq2seq.infer.hashing import CodeIndex

    if args.top is not None and args.top < 1:
        raise Seq2SeqError("--top must be at least 1")
    if args.radius is not None and args.radius < 0:
        raise Seq2SeqError("--radius must be >= 0")
    index = CodeIndex.load(args.index)
    if index.model_hash and index.model_hash != _weights_hash(args.checkpoint):
        raise Seq2SeqError(
            f"{args.index} was built with another checkpoint's codes than {args.checkpoint}; "
            "query with the checkpoint that built it (or rebuild the index)"
        )
    if reads_items(args.checkpoint):
        return search_images(args, index)
    ae = _autoencoder(args)
    queries = read_input_lines(args.input)
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
    with atomic_output(args.output) as out:
        # One line per match: QUERY<TAB>DISTANCE_OR_SIMILARITY<TAB>CORPUS_LINE<TAB>TEXT (lines from 1).
        for q, matches in enumerate(results, start=1):
            for i, dist in matches:
                out.write(f"{q}\t{dist}\t{i + 1}\t{clean_line(index.lines[i])}\n")
    return 0


def _add_search(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="query an index: lines within a Hamming radius, or nearest neighbours",
        description="For each query line print 'QUERY<TAB>DISTANCE<TAB>LINE<TAB>TEXT' for its "
        "matches (query and corpus lines numbered from 1). Binary index: the "
        "lines within --radius bits (hash lookups; default 2), or the --top K "
        "nearest by Hamming distance. Real index: the --top K (default 10) by "
        "cosine similarity. A checkpoint that reads images takes image queries "
        "(--input FILE.npy or a list of image files).",
    )
    _add_encoder_flags(p)
    p.add_argument("--index", required=True, metavar="FILE", help="index written by 'seq2seq hash'")
    p.add_argument("--radius", type=int, default=None, metavar="R", help="Hamming radius (binary index)")
    p.add_argument("--top", type=int, default=None, metavar="K", help="the K nearest lines")
    p.set_defaults(func=cmd_search)


# ---------------------------------------------------------------- sample
def cmd_sample(args: argparse.Namespace) -> int:
    if args.max_len < 1:
        raise Seq2SeqError(f"--max-len must be at least 1, got {args.max_len}")
    _text_only(args)
    ae = _autoencoder(args)
    if args.interpolate:
        lines = ae.interpolate(args.interpolate[0], args.interpolate[1], steps=args.steps, max_len=args.max_len)
    else:
        if args.n < 1:
            raise Seq2SeqError("-n must be at least 1")
        lines = ae.sample(args.n, seed=args.seed, max_len=args.max_len)
    with atomic_output(args.output) as out:
        out.writelines(clean_line(text) + "\n" for text in lines)
    return 0


def _add_sample(sub: Any) -> None:
    p = sub.add_parser(
        "sample",
        help="variational autoencoder: sentences from the prior, or interpolation",
        description="Decode sentences from z ~ N(0, I), or along the line between two "
        "sentences' codes (--interpolate A B).",
    )
    add_checkpoint_flag(p, "checkpoint directory")
    p.add_argument("-n", type=int, default=10, help="number of samples (default 10)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--interpolate", nargs=2, metavar=("FIRST", "SECOND"), help="two sentences")
    p.add_argument("--steps", type=int, default=5, help="interpolation points, ends included (default 5)")
    p.add_argument("--max-len", type=int, default=60, help="maximum output tokens")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="output file (default: stdout)")
    add_device_flag(p)
    p.set_defaults(func=cmd_sample)


# ---------------------------------------------------------------- classify
def cmd_classify(args: argparse.Namespace) -> int:
    _text_only(args)
    ae = _autoencoder(args)
    lines = read_input_lines(args.input)
    labels, probs = ae.classify(lines, progress=not args.quiet)
    with atomic_output(args.output) as out:
        for label, p in zip(labels, probs):
            label = clean_line(label)
            out.write(f"{label}\t{p.max():.4f}\n" if args.probability else f"{label}\n")
    return 0


def _add_classify(sub: Any) -> None:
    p = sub.add_parser(
        "classify",
        help="classifier: one label per input line",
        description="Write the predicted label of every input line (classifier checkpoints).",
    )
    _add_encoder_flags(p)
    p.add_argument("--probability", action="store_true", help="write 'LABEL<TAB>PROBABILITY'")
    p.set_defaults(func=cmd_classify)


def add_parsers(sub: Any) -> None:
    """Register reconstruct, encode, score, hash, search, sample and classify."""
    for add in (_add_reconstruct, _add_encode, _add_score, _add_hash, _add_search, _add_sample, _add_classify):
        add(sub)
