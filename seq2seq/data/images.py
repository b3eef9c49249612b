"""Images and vectors as model input: scikit-learn's handwritten digits, .npy arrays, PNG files.

- :func:`load_digits` -- scikit-learn's bundled 8x8 digits (1,797 images inside the wheel, no
  download), scaled to [0, 1], with their labels;
- :func:`split_by_image` -- disjoint train/valid/test *image* indices, stratified by label, so a
  test image is never seen in training, however the images are later combined;
- :func:`compose` -- sequences of images spelling given numerals (``"4021"`` -> four images, a
  random one of each digit from the given pool), padded, with a mask;
- :func:`load_npy` / :func:`load_image_files` / :func:`save_png` -- bring your own images.

scikit-learn and Pillow are optional (``pip install seq2seq[images]``); a missing one is a
:class:`DataError` saying what to install. Arrays here are numpy; ``models/`` turns them into
tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from seq2seq.errors import DataError

PathLike = Union[str, Path]
INSTALL = "pip install 'seq2seq[images]'"


def _require(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise DataError(f"{package} is not installed, and images need it: {INSTALL}") from None


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797, 8, 8) float32 in [0, 1] (ink is high), labels (1797,) int64."""
    datasets = _require("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def split_by_image(
    labels: np.ndarray, fractions: Sequence[float] = (0.6, 0.1, 0.3), seed: int = 0
) -> dict[str, np.ndarray]:
    """Disjoint ``train``/``valid``/``test`` index arrays, stratified by label: each class's
    images are shuffled (``seed``) and cut in the given fractions, so every class is in every
    split in about the same proportion. Indices are sorted within each split."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_train = int(round(fractions[0] * len(idx)))
        n_valid = int(round(fractions[1] * len(idx)))
        parts["train"].append(idx[:n_train])
        parts["valid"].append(idx[n_train : n_train + n_valid])
        parts["test"].append(idx[n_train + n_valid :])
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def by_label(indices: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """label -> the image indices of ``indices`` with that label."""
    return {int(c): indices[labels[indices] == c] for c in np.unique(labels[indices])}


def compose(
    numerals: Sequence[str],
    images: np.ndarray,
    pool: dict[int, np.ndarray],
    rng: np.random.Generator,
    max_items: Optional[int] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image sequences spelling ``numerals`` (digits only), each digit a random image of that class
    from ``pool`` (label -> image indices; see :func:`by_label`).

    Returns ``(x (N, S, *image), mask (N, S) bool, digits (N, S) int64)`` with S the longest
    numeral (or ``max_items``); padding is zeros, label 0, mask False.
    """
    longest = max(len(n) for n in numerals)
    s = max_items or longest
    if longest > s:
        raise ValueError(f"a numeral of {longest} digits does not fit {s} items")
    x = np.zeros((len(numerals), s, *images.shape[1:]), dtype=np.float32)
    mask = np.zeros((len(numerals), s), dtype=bool)
    digits = np.zeros((len(numerals), s), dtype=np.int64)
    for row, numeral in enumerate(numerals):
        if not numeral.isdigit():
            raise ValueError(f"'{numeral}' is not a string of digits")
        for j, ch in enumerate(numeral):
            x[row, j] = images[rng.choice(pool[int(ch)])]
            mask[row, j] = True
            digits[row, j] = int(ch)
    return x, mask, digits


# ----------------------------------------------------------------------------- your own images
def check_array(array: np.ndarray, name: str, item_shape: Optional[tuple[int, ...]] = None) -> np.ndarray:
    """float32 ``array`` of shape (N, *item_shape), finite; else a one-line DataError naming ``name``."""
    if array.dtype.kind not in "fiub":
        raise DataError(f"{name}: expected numbers, got an array of dtype {array.dtype}")
    array = np.asarray(array, dtype=np.float32)
    if item_shape is not None and tuple(array.shape[1:]) != tuple(item_shape):
        want = "x".join(map(str, item_shape))
        raise DataError(f"{name}: expected rows of shape {want}, got an array of shape {tuple(array.shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"{name}: {int(bad.sum())} NaN or infinite value(s), the first in row {row}")
    return array


def load_npy(path: PathLike, item_shape: Optional[tuple[int, ...]] = None) -> np.ndarray:
    """A ``.npy`` array (N, *item_shape) as float32, checked (:func:`check_array`). Pickled object
    arrays are refused (``allow_pickle=False``)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read a .npy array ({e})") from None
    return check_array(array, str(path), item_shape)


def load_image_files(
    paths: Sequence[PathLike], size: tuple[int, int] = (8, 8), invert: Union[bool, str] = "auto"
) -> np.ndarray:
    """Image files (PNG, JPEG, ... via Pillow) -> (N, H, W) float32 in [0, 1], grayscale, resized
    to ``size`` (H, W) with bicubic resampling.

    ``invert``: scikit-learn's digits are light ink on a dark ground; ``True`` flips every image,
    ``"auto"`` flips those whose mean is above 0.5 (dark ink on paper).
    """
    image_module = _require("PIL.Image", "Pillow")
    out = np.zeros((len(paths), *size), dtype=np.float32)
    for row, path in enumerate(paths):
        try:
            with image_module.open(path) as img:
                gray = img.convert("L").resize((size[1], size[0]), image_module.BICUBIC)
                pixels = np.asarray(gray, dtype=np.float32) / 255.0
        except (OSError, ValueError, image_module.DecompressionBombError) as e:
            raise DataError(f"{path}: cannot read an image ({e})") from None
        if invert is True or (invert == "auto" and pixels.mean() > 0.5):
            pixels = 1.0 - pixels
        out[row] = pixels
    return out


def save_png(image: np.ndarray, path: PathLike, scale: int = 1) -> Path:
    """Write one (H, W) image with values in [0, 1] as an 8-bit grayscale PNG, each pixel a
    ``scale`` x ``scale`` block."""
    image_module = _require("PIL.Image", "Pillow")
    pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if pixels.ndim != 2:
        raise ValueError(f"save_png writes one (H, W) image, got shape {pixels.shape}")
    if scale > 1:
        pixels = np.kron(pixels, np.ones((scale, scale), dtype=np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_module.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)
    return path
