"""The encoder commands (encode, reconstruct, score) on checkpoints whose encoder reads images or
vectors (``model.encoder`` cnn / mlp): arrays and image files in, arrays, PNGs or scores out.

Input (``--input``): a ``.npy`` array (N, *shape) (or (N, S, *shape) sequences, for encode of an
image -> text model), or a text file listing image files (PNG, ... relative to the list's
directory), one per line; without ``--input``, image file names on stdin (relative to the
working directory). Errors name the file: a wrong shape, NaN, an unreadable image.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq.cli.inputs import is_stream, read_input_lines
from seq2seq.cli.io import saved_config
from seq2seq.config import SearchConfig
from seq2seq.errors import DataError, Seq2SeqError

ITEM_ENCODERS = ("cnn", "mlp")


def reads_items(checkpoint: str) -> bool:
    """Whether the checkpoint's encoder reads images or vectors (its saved config says)."""
    return saved_config(checkpoint).model.encoder in ITEM_ENCODERS


def refuse_flags(given: list[tuple[str, Any]], what: str = "a checkpoint that reads images or vectors") -> None:
    """A one-line error naming the flags given (value not None / False) that do not apply."""
    names = [flag for flag, value in given if value is not None and value is not False]
    if names:
        verb = "does" if len(names) == 1 else "do"
        raise Seq2SeqError(f"{', '.join(names)} {verb} not apply to {what}")


def decoding_flags(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The decoding flags (one per SearchConfig field) as (flag, value)."""
    return [(f"--{f.name.replace('_', '-')}", getattr(args, f.name, None)) for f in dataclasses.fields(SearchConfig)]


def read_item_inputs(path: str | None, item_shape: tuple[int, ...]) -> Any:
    """The inputs of ``--input`` (see the module docstring): a checked array for a ``.npy`` file
    (its shape is checked against the model later, naming the file), else a list of (1, H, W)
    images read at ``item_shape``."""
    return read_named_inputs(path, item_shape)[0]


def read_named_inputs(path: str | None, item_shape: tuple[int, ...]) -> tuple[Any, list[str]]:
    """(inputs as :func:`read_item_inputs`, a name per input): the image file as listed, or
    ``FILE.npy[i]`` for row i (from 0) of an array."""
    from seq2seq.data.image_sources import read_image_list
    from seq2seq.data.images import load_npy
    from seq2seq.data.textio import read_lines

    if is_stream(path):  # image files named on stdin, relative to the working directory
        names = [line.strip() for line in read_input_lines(path) if line.strip()]
        return read_image_list(names, Path.cwd(), path or "<stdin>", item_shape), names
    if Path(path).suffix == ".npy":  # type: ignore[arg-type]
        array = load_npy(path)  # type: ignore[arg-type]
        return array, [f"{Path(path).name}[{i}]" for i in range(len(array))]  # type: ignore[arg-type]
    if not Path(path).is_file():  # type: ignore[arg-type]
        raise DataError(f"{path}: file not found")
    names = [line.strip() for line in read_lines(path)]  # type: ignore[arg-type]
    return read_image_list(names, Path(path).parent, str(path), item_shape), names  # type: ignore[arg-type]


def _image_args(args: argparse.Namespace):
    """(Autoencoder, inputs, name) for an image command."""
    from seq2seq.cli.encode import _autoencoder

    shape = tuple(saved_config(args.checkpoint).model.item_shape)
    inputs = read_item_inputs(args.input, shape)  # read and checked before the model is loaded
    return _autoencoder(args), inputs, args.input or "<stdin>"


def encode_images(args: argparse.Namespace) -> int:
    ae, inputs, name = _image_args(args)
    if args.bits:
        array = ae.codes_items(inputs, progress=not args.quiet, name=name).astype("uint8")
    else:
        array = ae.encode_items(inputs, progress=not args.quiet, name=name)
    from seq2seq.cli.output import write_npy

    write_npy(args.output, array)
    print(
        f"wrote {array.shape[0]:,} x {array.shape[1]} {'bits' if args.bits else 'codes'} to {args.output}",
        file=sys.stderr,
    )
    return 0


def _item_vectors(ae: Any, inputs: Any, real: bool, name: str, quiet: bool) -> np.ndarray:
    if real:
        return ae.encode_items(inputs, progress=not quiet, name=name)
    return ae.codes_items(inputs, progress=not quiet, name=name)


def hash_images(args: argparse.Namespace, fingerprint: str) -> int:
    """``seq2seq hash`` of a checkpoint that reads images: an index of their binary codes (or, with
    --real, context vectors), each named by its image file or ``FILE.npy[i]``."""
    from seq2seq.cli.encode import _autoencoder
    from seq2seq.infer.hashing import CodeIndex

    if not args.output:
        raise Seq2SeqError("--output FILE.npz is required (where to write the index)")
    inputs, names = read_named_inputs(args.input, tuple(saved_config(args.checkpoint).model.item_shape))
    ae, name = _autoencoder(args), args.input or "<stdin>"
    vectors = _item_vectors(ae, inputs, args.real, name, args.quiet)
    build = CodeIndex.from_vectors if args.real else CodeIndex.from_codes
    index = build(vectors, names, fingerprint)
    index.save(args.output)
    what = "context vectors (cosine)" if args.real else f"{index.bits}-bit codes"
    print(f"indexed {len(index):,} images as {what} in {args.output}", file=sys.stderr)
    return 0


def search_images(args: argparse.Namespace, index: Any) -> int:
    """``seq2seq search`` with image queries: 'QUERY<TAB>DISTANCE<TAB>ITEM<TAB>NAME' per match (query
    and indexed items numbered from 1), as for text."""
    from seq2seq.cli.encode import _autoencoder
    from seq2seq.cli.output import atomic_output, clean_line

    inputs, _ = read_named_inputs(args.input, tuple(saved_config(args.checkpoint).model.item_shape))
    ae, name = _autoencoder(args), args.input or "<stdin>"
    if index.kind == "real":
        if args.radius is not None:
            raise Seq2SeqError("--radius is for binary-code indexes; this one holds real vectors (use --top)")
        vectors = ae.encode_items(inputs, progress=not args.quiet, name=name)
        results = [[(i, f"{sim:.4f}") for i, sim in index.nearest(v, args.top or 10)] for v in vectors]
    else:
        codes = ae.codes_items(inputs, progress=not args.quiet, name=name)
        if args.top is not None:
            results = [[(i, str(d)) for i, d in index.rank(c, args.top)] for c in codes]
        else:
            radius = 2 if args.radius is None else args.radius
            results = [[(i, str(d)) for i, d in index.lookup(c, radius)] for c in codes]
    with atomic_output(args.output) as out:
        for q, matches in enumerate(results, start=1):
            for i, dist in matches:
                out.write(f"{q}\t{dist}\t{i + 1}\t{clean_line(index.lines[i])}\n")
    return 0


def reconstruct_images(args: argparse.Namespace) -> int:
    """``--output FILE.npy``: an array (N, *shape); any other name: a directory of PNGs, one per
    input (``00000.png``, ... in input order)."""
    refuse_flags(decoding_flags(args), "an image autoencoder's reconstruction (it writes images, with no search)")
    if not args.output or args.output == "-":
        raise Seq2SeqError("--output FILE.npy (an array) or DIR (PNG files) is required: reconstructions are images")
    ae, inputs, name = _image_args(args)
    images = ae.reconstruct_items(inputs, progress=not args.quiet, name=name)
    if args.output.endswith(".npy"):
        from seq2seq.cli.output import write_npy

        write_npy(args.output, images)
        print(
            f"wrote {len(images):,} images of {'x'.join(map(str, images.shape[1:]))} to {args.output}", file=sys.stderr
        )
        return 0
    if images.ndim != 3:
        raise Seq2SeqError(f"PNG files hold (H, W) images; these are {images.shape[1:]}: give --output FILE.npy")
    from seq2seq.data.images import save_png

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise Seq2SeqError(f"--output {out} is a file: give a directory for PNG files, or FILE.npy")
    for i, image in enumerate(images):
        save_png(image, out / f"{i:05d}.png")
    print(f"wrote {len(images):,} PNG files to {out}/", file=sys.stderr)
    return 0


def score_images(args: argparse.Namespace, threshold_of) -> int:
    """One line per image: its mean squared error per pixel (and a 0/1 flag with a threshold)."""
    from seq2seq.cli.output import atomic_output

    ae, inputs, name = _image_args(args)
    scores = ae.score_items(inputs, progress=not args.quiet, name=name)
    threshold = threshold_of(scores)
    with atomic_output(args.output) as out:
        if args.header:
            out.write("mse" + ("\tflag" if threshold is not None else "") + "\n")
        for mse in scores:
            flag = "" if threshold is None else "\t" + ("1" if mse > threshold else "0")
            out.write(f"{mse:.6f}{flag}\n")
    if threshold is not None:
        flagged = int(np.sum(scores > threshold))
        print(f"threshold {threshold:.6f} MSE: {flagged:,} of {len(scores):,} images flagged", file=sys.stderr)
    return 0


def evaluate_images(args: argparse.Namespace) -> int:
    """``seq2seq evaluate`` of an image -> text checkpoint: --src FILE.npy or a list of image files,
    --ref one line per input; prints BLEU, chrF and exact match."""
    from seq2seq.cli.decoding import decoding_settings, load_translator
    from seq2seq.cli.output import atomic_output, clean_line
    from seq2seq.data.textio import read_lines
    from seq2seq.metrics import bleu, chrf, exact_match

    model = saved_config(args.checkpoint).model
    if model.decoder == "image":
        raise Seq2SeqError(
            f"{args.checkpoint} is an image autoencoder: it writes images, not text; 'seq2seq score' gives its "
            "reconstruction error"
        )
    refuse_flags([("--window", args.window), ("--strict", args.strict), ("--batch-tokens", args.batch_tokens)])
    references = read_lines(args.ref)
    inputs = read_item_inputs(args.src, tuple(model.item_shape))
    translator = load_translator(args, decoding_settings(args))
    hyps = [h[0][0] for h in translator.item_hypotheses(inputs, progress=not args.quiet, name=args.src)]
    if len(hyps) != len(references):
        raise Seq2SeqError(
            f"{args.src} has {len(hyps)} inputs but {args.ref} has {len(references)} lines; they must be aligned"
        )
    if not hyps:
        raise Seq2SeqError(f"{args.src} has no inputs: nothing to evaluate")
    if args.output:
        with atomic_output(args.output) as out:
            out.writelines(clean_line(h) + "\n" for h in hyps)
    print(bleu(hyps, references))
    print(chrf(hyps, references))
    print(f"exact match = {exact_match(hyps, references):.2f}% ({len(hyps):,} inputs)")
    return 0
