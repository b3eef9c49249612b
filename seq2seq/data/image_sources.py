"""Splits whose sources are images or vectors (``data.format: images | digits``), for training.

A split is an :class:`ItemData`: a table of items (images or vectors, ``(M, *item_shape)``), each
example a sequence of row indices into it, and one target text per example. Two readers:

- ``images``: ``PREFIX.npy`` (N, *item_shape) -- one item per example -- or (N, S, *item_shape)
  -- S items each -- or ``PREFIX.SRC_LANG`` listing image files (PNG, ...; relative to the list's
  directory), one per example; ``PREFIX.TGT_LANG`` the targets, one line per example;
- ``digits``: scikit-learn's digits split *by image* (:func:`~seq2seq.data.images.split_by_image`),
  numbers composed from the split's own images only (its table holds no other image), targets
  the numbers in words.

To the Trainer a split is a :class:`ItemSource` (a :class:`TextSource` whose source "texts" are
the examples' item indices, so SentencePiece, the cache key and the error for an empty split work
as for text) and an :class:`ItemStore` (what :class:`~seq2seq.data.store.StoreExamples` reads in
place of a token store: the item ids of each example, 1 + its row, 0 being padding, and the
tokenized targets). The objective (``ImageInput`` in :mod:`seq2seq.train.objectives`) turns ids
into items. The inputs are held in memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from seq2seq.config import Config, DataConfig
from seq2seq.data import images as image_data
from seq2seq.data.sources import Blocks, ParallelText, TextSource
from seq2seq.data.text_formats import resolve_path
from seq2seq.data.textio import read_lines
from seq2seq.errors import DataError

DIGIT_SPLITS = ("train", "valid", "test")
DIGIT_WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "ko": ("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"),
}


@dataclass
class ItemData:
    """A split of item inputs in memory (see the module docstring)."""

    name: str
    items: np.ndarray  # (M, *item_shape) float32
    examples: list[np.ndarray]  # per example: (S_i,) rows of ``items``
    targets: list[str]
    labels: Optional[np.ndarray] = None  # (M,) each item's class (digits), else None

    def sources(self) -> list[np.ndarray]:
        """Each example's items, (S_i, *item_shape)."""
        return [self.items[rows] for rows in self.examples]

    def item_labels(self) -> Optional[list[np.ndarray]]:
        return None if self.labels is None else [self.labels[rows] for rows in self.examples]


@dataclass
class ItemText(ParallelText):
    """A split in memory whose ``src`` are arrays (S, *item_shape), one per example (what
    :class:`~seq2seq.infer.translator.Translator` decodes); ``labels``: each item's class, if known."""

    labels: Optional[list[np.ndarray]] = None


@dataclass
class ItemSource(TextSource):
    """A split of item inputs as a :class:`TextSource`: its sources are the examples' row indices
    as text (``"3 17"``); :meth:`data` loads the :class:`ItemData` (once)."""

    load_data: Optional[Callable[[], ItemData]] = None

    def data(self) -> ItemData:
        assert self.load_data is not None
        return self.load_data()

    def text(self) -> ItemText:
        data = self.data()
        return ItemText(src=data.sources(), tgt=list(data.targets), name=self.name, labels=data.item_labels())


def _source(name: str, files: tuple[Path, ...], load: Callable[[], ItemData]) -> ItemSource:
    cached = functools.lru_cache(maxsize=1)(load)

    def blocks() -> Blocks:
        data = cached()
        step = 50_000
        for i in range(0, len(data.targets), step):
            rows = data.examples[i : i + step]
            yield [" ".join(map(str, r.tolist())) for r in rows], data.targets[i : i + step]

    return ItemSource(name, files, blocks, False, cached)


def _check_split(cfg: Config, split: str) -> None:
    """A split named, and for ``digits`` one of its splits (otherwise a DataError naming it)."""
    if not split:
        raise DataError(f"no split given for data.format={cfg.data.format} (empty file name/split)")
    if cfg.data.format == "digits" and split not in DIGIT_SPLITS:
        raise DataError(f"data.format=digits: the split '{split}' is not one of {', '.join(DIGIT_SPLITS)}")


def open_items(cfg: Config, split: str) -> ItemSource:
    """One split of ``cfg.data`` (format ``images`` or ``digits``); missing files are errors here."""
    _check_split(cfg, split)
    if cfg.data.format == "digits":
        return _source(f"digits:{split}", (), lambda: digits_split(cfg.data, split))
    inputs, targets = _split_files(cfg.data, split)
    shape = tuple(cfg.model.item_shape)
    return _source(str(inputs), (inputs, targets), lambda: array_split(inputs, targets, shape))


def open_images(cfg: Config, split: str) -> ItemSource:
    """One split of an image autoencoder (``model.decoder: image``): one image per example, no
    targets (empty texts). ``images``: ``PREFIX.npy`` (N, *item_shape) or ``PREFIX.SRC_LANG``
    listing image files (a ``.tgt`` file is not read); ``digits``: every image of the split once."""
    _check_split(cfg, split)
    if cfg.data.format == "digits":
        return _source(f"digits:{split}:images", (), lambda: digit_images(cfg.data, split))
    base = resolve_path(cfg.data, split)
    prefix = base.with_suffix("") if base.suffix == ".npy" else base
    npy, listing = Path(f"{prefix}.npy"), Path(f"{prefix}.{cfg.data.src_lang}")
    inputs = npy if npy.is_file() else listing
    if not inputs.is_file():
        raise DataError(
            f"data.format=images, split '{split}': found neither {npy} (an array of images) nor {listing} "
            "(image files, one per line)"
        )
    shape = tuple(cfg.model.item_shape)
    return _source(str(inputs), (inputs,), lambda: image_split(inputs, shape))


def image_split(inputs: Path, item_shape: tuple[int, ...] = ()) -> ItemData:
    """An autoencoder's ``images`` split: one image (or vector) per example, targets empty."""
    sources = read_inputs(inputs, item_shape)
    if not sources:
        raise DataError(f"{inputs}: no images, so nothing to train or validate on")
    if any(len(s) != 1 for s in sources):
        raise DataError(
            f"{inputs}: an image autoencoder reads one image per example: give an array (N, *item_shape), "
            "not sequences (N, S, *item_shape)"
        )
    items = np.concatenate(sources).astype(np.float32, copy=False)
    return ItemData(str(inputs), items, [np.array([i]) for i in range(len(items))], [""] * len(items))


def digit_images(d: DataConfig, split: str) -> ItemData:
    """Every image of a ``digits`` split once (split by image, as :func:`digits_split`); targets empty."""
    images, labels = _digits()
    part = image_data.split_by_image(labels, tuple(d.digits.fractions), seed=d.digits.split_seed)[split]
    n = len(part)
    return ItemData(f"digits:{split}", images[part], [np.array([i]) for i in range(n)], [""] * n, labels[part])


# ------------------------------------------------------------------------- your arrays and images
def _split_files(d: DataConfig, split: str) -> tuple[Path, Path]:
    """(inputs, targets) of an ``images`` split: PREFIX.npy or PREFIX.SRC_LANG, and PREFIX.TGT_LANG."""
    base = resolve_path(d, split)
    prefix = base.with_suffix("") if base.suffix == ".npy" else base
    npy, listing, targets = Path(f"{prefix}.npy"), Path(f"{prefix}.{d.src_lang}"), Path(f"{prefix}.{d.tgt_lang}")
    inputs = npy if npy.is_file() else listing
    if not inputs.is_file():
        raise DataError(
            f"data.format=images, split '{split}': found neither {npy} (an array of inputs) nor {listing} "
            "(image files, one per line)"
        )
    if not targets.is_file():
        raise DataError(f"data.format=images, split '{split}': the targets {targets} (one line per input) are missing")
    return inputs, targets


def read_inputs(path: Path, item_shape: tuple[int, ...] = ()) -> list[np.ndarray]:
    """The inputs in ``path``, each (S, *item_shape): a ``.npy`` array (N, *item_shape) -- one
    item each -- or (N, S, *item_shape); else a text file listing image files (relative to its
    directory), one item each, read at ``item_shape`` (default 8x8). Errors name the file."""
    path = Path(path)
    if path.suffix == ".npy":
        array = image_data.load_npy(path)
        if not item_shape:
            item_shape = tuple(array.shape[1:])
        if array.ndim >= 2 and tuple(array.shape[1:]) == item_shape:
            return list(array[:, None])
        if array.ndim >= 3 and tuple(array.shape[2:]) == item_shape:
            return list(array)
        want = ", ".join(map(str, item_shape))
        raise DataError(
            f"{path}: expected an array of shape (N, {want}) (one input per row) or (N, S, {want}) (S items per "
            f"input), got {tuple(array.shape)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return read_image_list([line.strip() for line in read_lines(path)], path.parent, str(path), item_shape)


def read_image_list(names: list[str], base: Path, origin: str, item_shape: tuple[int, ...] = ()) -> list[np.ndarray]:
    """Image files named one per line (relative to ``base``), each one item (1, H, W) read at
    ``item_shape`` (default 8x8); ``origin`` names the list in errors."""
    if not all(names):
        raise DataError(f"{origin}: line {names.index('') + 1} is empty; list one image file per line")
    files = [p if p.is_absolute() else base / p for p in map(Path, names)]
    missing = next((f for f in files if not f.is_file()), None)
    if missing is not None:
        raise DataError(f"{origin}: line {files.index(missing) + 1}: image file {missing} not found")
    if len(item_shape) not in (0, 2):
        raise DataError(
            f"{origin}: image files give (H, W) grayscale images, but the model reads items of {item_shape}"
        )
    size = tuple(item_shape) if item_shape else (8, 8)
    return list(image_data.load_image_files(files, size=size)[:, None])  # type: ignore[arg-type]


def array_split(inputs: Path, targets: Path, item_shape: tuple[int, ...] = ()) -> ItemData:
    """An ``images`` split (see :func:`read_inputs`); the counts must match."""
    sources = read_inputs(inputs, item_shape)
    lines = read_lines(targets)
    if len(lines) != len(sources):
        raise DataError(f"{inputs} has {len(sources):,} input(s) but {targets} has {len(lines):,} line(s)")
    if not sources:
        raise DataError(f"{inputs}: no inputs, so nothing to train or validate on")
    lengths = np.array([len(s) for s in sources])
    ends = np.cumsum(lengths)
    items = np.concatenate(sources).astype(np.float32, copy=False)
    return ItemData(str(inputs), items, [np.arange(e - n, e) for n, e in zip(lengths, ends)], lines)


# ------------------------------------------------------------------------------- generated digits
@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    return image_data.load_digits()


def spell_number(numeral: str, lang: str) -> str:
    """A numeral in words: one digit from :data:`DIGIT_WORDS`, more with num2words."""
    if len(numeral) == 1:
        return DIGIT_WORDS[lang][int(numeral)]
    try:
        from num2words import num2words
    except ImportError:
        raise DataError("data.digits.max_digits > 1 spells numbers with num2words: pip install num2words") from None
    return str(num2words(int(numeral), lang=lang))


def digits_split(d: DataConfig, split: str) -> ItemData:
    """One split of generated digit numbers (``data.digits``), from that split's images only.

    Numbers have ``min_digits`` to ``max_digits`` digits (lengths equally likely, no leading
    zero), each digit a random image of that digit. With one digit, ``valid`` and ``test`` are
    every image of the split once; ``train`` is ``train_size`` draws.
    """
    g = d.digits
    images, labels = _digits()
    part = image_data.split_by_image(labels, tuple(g.fractions), seed=g.split_seed)[split]
    items, item_labels = images[part], labels[part]
    pool = {c: np.flatnonzero(item_labels == c) for c in range(10)}
    rng = np.random.default_rng([g.split_seed, DIGIT_SPLITS.index(split), 20])
    if g.max_digits == 1 and split != "train":
        numerals = [str(c) for c in item_labels]
        examples = [np.array([i]) for i in range(len(part))]
    else:
        count = {"train": g.train_size, "valid": g.valid_size, "test": g.test_size}[split]
        numerals = []
        for length in rng.integers(g.min_digits, g.max_digits + 1, size=count):
            first = rng.integers(1 if length > 1 else 0, 10)
            numerals.append(str(first) + "".join(map(str, rng.integers(0, 10, size=length - 1))))
        examples = [np.array([rng.choice(pool[int(c)]) for c in n]) for n in numerals]
    targets = [spell_number(n, g.lang) for n in numerals]
    return ItemData(f"digits:{split}", items, examples, targets, item_labels)


def place_value_targets(labels: list[np.ndarray], classes: int, blocks: int) -> np.ndarray:
    """The interface vectors of per-item classes (:class:`~seq2seq.models.vision.ItemClassSeq2Seq`):
    (N, blocks * (classes + 1)) one-hot blocks, the last item in block 0, class ``classes`` where
    there is no item."""
    out = np.zeros((len(labels), blocks, classes + 1), dtype=np.float32)
    out[:, :, classes] = 1.0
    for row, item_labels in enumerate(labels):
        for place, label in enumerate(item_labels[::-1]):
            out[row, place, classes] = 0.0
            out[row, place, int(label)] = 1.0
    return out.reshape(len(labels), -1)


def digit_context_targets(cfg: Config, split: str) -> np.ndarray:
    """The place-value vectors of a ``digits`` split's examples (staged training)."""
    labels = digits_split(cfg.data, split).item_labels()
    assert labels is not None
    return place_value_targets(labels, cfg.model.item_classes, cfg.model.context_target_blocks)


# ------------------------------------------------------------------------------------ the store
class ItemStore:
    """What :class:`~seq2seq.data.store.StoreExamples` reads for an item split: each example's item
    ids (1 + row of ``data.items``; 0 is padding) and its target token ids."""

    def __init__(self, data: ItemData, encode: Callable[[list[str]], list[list[int]]]) -> None:
        self.data, self.name, self.size = data, data.name, len(data.examples)
        self._targets = encode(data.targets)
        self.src_lengths = np.array([len(e) for e in data.examples], dtype=np.int64)
        self.tgt_lengths = np.array([len(t) for t in self._targets], dtype=np.int64)
        self.numeral_limits: dict[str, int] = {}

    def sources(self, rows: np.ndarray) -> list[list[int]]:
        return [(self.data.examples[r] + 1).tolist() for r in rows]

    def targets(self, rows: np.ndarray) -> list[list[int]]:
        return [self._targets[r] for r in rows]


__all__ = [
    "ItemData",
    "ItemSource",
    "ItemStore",
    "ItemText",
    "array_split",
    "digit_context_targets",
    "digit_images",
    "digits_split",
    "image_split",
    "open_images",
    "open_items",
    "place_value_targets",
    "read_inputs",
    "spell_number",
]
