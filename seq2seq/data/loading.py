"""Loading parallel text (source/target sentence pairs) in the formats of :class:`DataConfig`.

``text`` and ``tsv`` files are read with :func:`seq2seq.data.textio.iter_line_blocks` (strict
UTF-8, gzip, line-exact, a few MB at a time); ``jsonl``, ``disk`` and ``hub`` go through Hugging
Face ``datasets``. Every problem a user can fix becomes a :class:`DataError` that names the file
(and line, when there is one)::

    train = load_parallel(cfg.data, cfg.data.train)   # ParallelText(src=[...], tgt=[...], name=...)

A split of any size is read without holding it in memory through a :class:`TextSource`
(:func:`open_parallel`, :func:`open_monolingual`, :func:`open_labelled`): blocks of pairs, read
again each time they are asked for. The ``load_*`` functions collect the same blocks into a
:class:`ParallelText`, so both ways read the same pairs and raise the same errors. ``jsonl``,
``disk`` and ``hub`` splits are not streamed yet: their source loads the split when it is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.config import DataConfig
from seq2seq.data.textio import check_file, check_text_file, iter_line_blocks, read_lines
from seq2seq.errors import DataError

#: Blocks of aligned pairs: (sources, targets), lists of equal length (never empty).
Blocks = Iterator[tuple[list[str], list[str]]]

FORMATS = ("text", "tsv", "jsonl", "disk", "hub")


@dataclass
class ParallelText:
    """Aligned sentence pairs: ``src[i]`` translates to ``tgt[i]``; ``name`` says where from."""

    src: list[str]
    tgt: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.src)

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise DataError(f"{self.name}: {len(self.src)} source but {len(self.tgt)} target sentences")


@dataclass
class TextSource:
    """One split read a block of pairs at a time: :meth:`blocks` reads it (again) from the start.

    ``files``: the local files it reads (what a cache of the split is keyed by; empty for a hub
    dataset). ``monolingual``: the target is the source (an autoencoder's split); its blocks
    give the same list twice.
    """

    name: str
    files: tuple[Path, ...]
    read: Callable[[], Blocks]
    monolingual: bool = False

    def blocks(self) -> Blocks:
        """The pairs in order, in blocks of a few MB of text (lists of equal length)."""
        return self.read()

    def require_examples(self) -> None:
        """A DataError, as :func:`load_parallel` gives, when no source sentence is non-blank
        (reads up to the first that is)."""
        total = 0
        for src, _ in self.blocks():
            if any(s.strip() for s in src):
                return
            total += len(src)
        raise no_examples(self.name, total)

    def texts(self, side: str) -> Iterator[str]:
        """The sentences of one side (``src`` or ``tgt``), streamed."""
        k = ("src", "tgt").index(side)
        for block in self.blocks():
            yield from block[k]

    def map_sources(self, fn: Callable[[str], str]) -> TextSource:
        """This source with ``fn`` applied to every source sentence (the target of a
        monolingual source follows its source)."""
        read = self.read

        def blocks() -> Blocks:
            for src, tgt in read():
                new = list(map(fn, src))
                yield new, new if self.monolingual else tgt

        return dataclasses.replace(self, read=blocks)

    def load(self) -> ParallelText:
        """All pairs in memory (small splits: validation, tests)."""
        src: list[str] = []
        tgt: list[str] = []
        for s, t in self.blocks():
            src += s
            if not self.monolingual:
                tgt += t
        return ParallelText(src=src, tgt=list(src) if self.monolingual else tgt, name=self.name)

    def identity(self) -> list[Any]:
        """What says whether the split changed: each file's path, size and modification time;
        for a split without local files, a SHA-256 of its text (which reads it)."""
        if self.files:
            stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files]
            return [list(x) for x in stats]
        digest = hashlib.sha256()
        for src, tgt in self.blocks():
            for s, t in zip(src, tgt):
                digest.update(s.encode("utf-8", "surrogatepass") + b"\t" + t.encode("utf-8", "surrogatepass") + b"\n")
        return [self.name, digest.hexdigest()]

    def count_hint(self) -> int:
        """The number of lines of the first file when it is plain text (0: unknown), for a
        progress bar; counted fast, without decoding."""
        if not self.files or not self.files[0].is_file():
            return 0
        with open(self.files[0], "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                return 0
            f.seek(0)
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))


def no_examples(name: str, total: int) -> DataError:
    """The error for a split without an example with a non-blank source (``total`` lines)."""
    what = "no lines" if not total else f"only empty or blank lines ({total})"
    return DataError(f"{name}: {what}, so nothing to train or validate on; check the file and data.train/data.valid")


# ------------------------------------------------------------------------------------ helpers
def _require_examples(text: ParallelText) -> ParallelText:
    """``text`` itself; a DataError when it has no example with a non-blank source."""
    if not any(s.strip() for s in text.src):
        raise no_examples(text.name, len(text))
    return text


def _strip_cr(lines: list[str]) -> list[str]:
    """Remove one trailing ``\\r`` per line (CRLF leftovers); other text is kept verbatim."""
    return [s[:-1] if s.endswith("\r") else s for s in lines]


def _first_file(tried: list[Path]) -> Path | None:
    """The first of ``tried`` that is a file; None when there is none (a DataError when there is
    none but one of them is a directory)."""
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        for p in tried:
            if p.is_dir():
                raise DataError(f"{p} is a directory, expected a text file (check data.path and the split)")
    return found


def resolve_path(cfg: DataConfig, name: str) -> Path:
    """``name`` relative to ``cfg.path`` when that is set (absolute names are kept)."""
    p = Path(name).expanduser()
    if cfg.path and not p.is_absolute():
        return Path(cfg.path).expanduser() / p
    return p


def _quiet_datasets() -> Any:
    """Import ``datasets`` with progress bars and info logging off."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


@contextlib.contextmanager
def _temp_cache() -> Iterator[str]:
    """A throw-away ``cache_dir`` so local files never fill the user's HF cache."""
    with tempfile.TemporaryDirectory(prefix="seq2seq-hf-") as d:
        yield d


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _column_strings(values: list[Any], what: str, name: str, key: str) -> list[str]:
    """Check that every value of a column is a string; strip trailing ``\\r``."""
    for i, v in enumerate(values):
        if not isinstance(v, str):
            kind = "missing (null)" if v is None else f"a {type(v).__name__} ({v!r:.40})"
            raise DataError(
                f"{name}: {what} {i + 1}: '{key}' is {kind}, expected a string; "
                "every record needs both languages as text"
            )
    return _strip_cr(values)


def _arrow_column(ds: Any, column: str) -> list[Any]:
    """One column of a ``datasets.Dataset`` as Python values (respects selections/shuffles)."""
    return ds.with_format("arrow")[column].to_pylist()


def _from_dataset(ds: Any, cfg: DataConfig, name: str, what: str = "row") -> ParallelText:
    """Source/target columns of a ``datasets.Dataset``: a ``translation`` dict or flat columns."""
    src_key, tgt_key = cfg.src_lang, cfg.tgt_lang
    columns = list(ds.column_names)
    if "translation" in columns and not {src_key, tgt_key} <= set(columns):
        flat = ds.select_columns(["translation"]).flatten()  # struct -> translation.<lang>
        present = [c.split(".", 1)[1] for c in flat.column_names if c.startswith("translation.")]
        for key in (src_key, tgt_key):
            if key not in present:
                raise DataError(
                    f"{name}: no '{key}' in the 'translation' records (keys present: "
                    f"{', '.join(present) or 'none'}); set data.src_lang/data.tgt_lang to match"
                )
        src_desc, tgt_desc = f"translation.{src_key}", f"translation.{tgt_key}"
        src_vals, tgt_vals = _arrow_column(flat, src_desc), _arrow_column(flat, tgt_desc)
    else:
        for key in (src_key, tgt_key):
            if key not in columns:
                raise DataError(
                    f"{name}: no '{key}' column (columns present: {', '.join(columns) or 'none'}); "
                    "expected a 'translation' column of {lang: text} records or one column per "
                    "language; set data.src_lang/data.tgt_lang to match"
                )
        src_desc, tgt_desc = src_key, tgt_key
        src_vals, tgt_vals = _arrow_column(ds, src_key), _arrow_column(ds, tgt_key)
    return ParallelText(
        src=_column_strings(src_vals, what, name, src_desc),
        tgt=_column_strings(tgt_vals, what, name, tgt_desc),
        name=name,
    )


# ------------------------------------------------------------------------------------ formats
def _zip_files(a: Path, b: Path) -> Blocks:
    """Line ``i`` of ``a`` with line ``i`` of ``b``; a DataError with both counts when they differ."""
    blocks_a, blocks_b = iter_line_blocks(a), iter_line_blocks(b)
    lines_a: list[str] = []
    lines_b: list[str] = []
    count_a = count_b = 0
    while True:
        if not lines_a:
            lines_a = next(blocks_a, [])
            count_a += len(lines_a)
        if not lines_b:
            lines_b = next(blocks_b, [])
            count_b += len(lines_b)
        if not lines_a or not lines_b:
            break
        k = min(len(lines_a), len(lines_b))
        yield lines_a[:k], lines_b[:k]
        lines_a, lines_b = lines_a[k:], lines_b[k:]
    if lines_a or lines_b:
        count_a += sum(len(block) for block in blocks_a)
        count_b += sum(len(block) for block in blocks_b)
        raise DataError(
            f"line counts differ: {a} has {count_a} lines, {b} has {count_b}; "
            "parallel files must be aligned line by line"
        )


def _text_source(cfg: DataConfig, prefix: str) -> TextSource:
    base = resolve_path(cfg, prefix)
    files = []
    for lang in (cfg.src_lang, cfg.tgt_lang):
        tried = [Path(f"{base}.{lang}"), Path(f"{base}.{lang}.gz")]
        found = _first_file(tried)
        if found is None:
            raise DataError(
                f"data file not found for language '{lang}': tried {', '.join(map(str, tried))} "
                "(check data.path, data.src_lang/tgt_lang and the split prefix)"
            )
        files.append(found)
    return TextSource(f"{base}.{{{cfg.src_lang},{cfg.tgt_lang}}}", tuple(files), lambda: _zip_files(*files))


def _tsv_source(cfg: DataConfig, file: str) -> TextSource:
    path = resolve_path(cfg, file)
    check_file(path)

    def blocks() -> Blocks:
        n = 0
        for lines in iter_line_blocks(path):
            src, tgt = [], []
            for line in lines:
                n += 1
                parts = line.split("\t")
                if len(parts) != 2:
                    raise DataError(
                        f"{path}:{n}: expected 'source<TAB>target' (exactly one TAB), found {len(parts) - 1} TABs"
                    )
                src.append(parts[0])
                tgt.append(parts[1][:-1] if parts[1].endswith("\r") else parts[1])
            yield src, tgt

    return TextSource(str(path), (path,), blocks)


def _load_text(cfg: DataConfig, prefix: str) -> ParallelText:
    return _text_source(cfg, prefix).load()


def _load_tsv(cfg: DataConfig, file: str) -> ParallelText:
    return _tsv_source(cfg, file).load()


def _diagnose_jsonl(path: Path) -> None:
    """Find the first line ``datasets`` could not read and raise a DataError naming it."""
    check_text_file(path)  # encoding / NUL problems
    for n, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")


def _load_jsonl(cfg: DataConfig, file: str) -> ParallelText:
    path = resolve_path(cfg, file)
    # Validate the encoding first: pyarrow's JSON reader lets invalid UTF-8 through into string
    # values (and fails later, without a line number). Cheap next to tokenization.
    check_text_file(path)
    datasets = _quiet_datasets()
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # we explain failures ourselves
    try:
        with _temp_cache() as cache:
            try:
                ds = datasets.load_dataset(
                    "json",
                    data_files=str(path),
                    split="train",
                    keep_in_memory=True,
                    cache_dir=cache,
                )
            except Exception as e:
                _diagnose_jsonl(path)
                raise DataError(
                    f"{path}: could not be read as JSON lines ({_first_line(e)}); expected one "
                    '{"translation": {"SRC": ..., "TGT": ...}} or {"SRC": ..., "TGT": ...} '
                    "object per line with text values"
                ) from None
            return _from_dataset(ds, cfg, str(path), what="record")
    finally:
        datasets.logging.set_verbosity(verbosity)


def _load_disk(cfg: DataConfig, split: str) -> ParallelText:
    if not cfg.path:
        raise DataError("data.format=disk needs data.path (a directory written by save_to_disk)")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset directory not found: {root} (data.path, written by save_to_disk)")
    datasets = _quiet_datasets()
    name = f"{root}[{split}]"
    target = root
    if not (root / "dataset_dict.json").is_file() and (root / split).is_dir():
        target = root / split  # one saved Dataset per split: PATH/SPLIT
        name = str(target)
    try:
        obj = datasets.load_from_disk(str(target), keep_in_memory=True)
    except Exception as e:
        raise DataError(f"{target}: not a dataset saved with save_to_disk ({_first_line(e)})") from None
    if target != root:
        if isinstance(obj, datasets.DatasetDict):
            raise DataError(f"{target}: expected a single Dataset, found a DatasetDict")
        return _from_dataset(obj, cfg, name)
    if isinstance(obj, datasets.DatasetDict):
        if split not in obj:
            raise DataError(
                f"{root}: no split '{split}' (splits present: {', '.join(obj.keys()) or 'none'}); "
                "check data.train/data.valid/data.test"
            )
        ds = obj[split]
    else:
        # A single Dataset has no split names; accept it only under its own split name.
        own = str(obj.split) if getattr(obj, "split", None) is not None else ""
        if split != own:
            raise DataError(
                f"{root} holds a single dataset{f' (split {own!r})' if own else ''}, not a "
                f"DatasetDict with a '{split}' split; save a DatasetDict "
                "({'train': ..., 'valid': ...}) with save_to_disk, or one Dataset per split "
                f"as {root}/SPLIT"
            )
        ds = obj
    return _from_dataset(ds, cfg, name)


def _load_hub(cfg: DataConfig, split: str) -> ParallelText:
    if not cfg.path:
        raise DataError("data.format=hub needs data.path (the dataset name on the Hugging Face Hub)")
    datasets = _quiet_datasets()
    try:
        ds = datasets.load_dataset(cfg.path, cfg.hub_config or None, split=split)
    except Exception as e:
        conf = f" (config '{cfg.hub_config}')" if cfg.hub_config else ""
        raise DataError(
            f"could not load split '{split}' of hub dataset '{cfg.path}'{conf}: {_first_line(e)} "
            "(check the name, data.hub_config, the split and your network/HF_DATASETS_OFFLINE)"
        ) from None
    name = f"{cfg.path}{'/' + cfg.hub_config if cfg.hub_config else ''}[{split}]"
    return _from_dataset(ds, cfg, name)


_LOADERS = {
    "text": _load_text,
    "tsv": _load_tsv,
    "jsonl": _load_jsonl,
    "disk": _load_disk,
    "hub": _load_hub,
}


def _loaded_source(
    name: str, files: tuple[Path, ...], load: Callable[[], ParallelText], monolingual: bool = False
) -> TextSource:
    """A source that loads its split (in memory) each time it is read: jsonl, disk, hub."""

    def blocks() -> Blocks:
        text = load()
        step = 50_000
        for i in range(0, len(text), step):
            src = text.src[i : i + step]
            yield src, src if monolingual else text.tgt[i : i + step]

    return TextSource(name, files, blocks, monolingual)


def _dataset_files(cfg: DataConfig, split: str) -> tuple[tuple[Path, ...], str]:
    """The local files of a jsonl or disk split (what a cache is keyed by) and its name."""
    if cfg.format == "jsonl":
        path = resolve_path(cfg, split)
        check_file(path)
        return (path,), str(path)
    if cfg.format == "disk" and cfg.path:
        root = Path(cfg.path).expanduser()
        if root.is_dir():
            # Hidden entries are not the dataset's (a token store cache may be kept in there).
            files = (
                f
                for f in root.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
            )
            return tuple(sorted(files)), f"{root}[{split}]"
    return (), f"{cfg.path}{'/' + cfg.hub_config if cfg.hub_config else ''}[{split}]"


def _check_split(cfg: DataConfig, split: str) -> None:
    if cfg.format not in _LOADERS:
        raise DataError(f"unknown data.format '{cfg.format}' (use one of {', '.join(FORMATS)})")
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")


def open_parallel(cfg: DataConfig, split: str) -> TextSource:
    """One split of parallel text as a :class:`TextSource` (``split`` as in
    :func:`load_parallel`). Missing files are found here; errors inside them when read."""
    _check_split(cfg, split)
    if cfg.format == "text":
        return _text_source(cfg, split)
    if cfg.format == "tsv":
        return _tsv_source(cfg, split)
    files, name = _dataset_files(cfg, split)
    return _loaded_source(name, files, lambda: _LOADERS[cfg.format](cfg, split))


def load_parallel(cfg: DataConfig, split: str) -> ParallelText:
    """Load one split: ``split`` is the value of ``cfg.train``/``cfg.valid``/``cfg.test``.

    Its meaning depends on ``cfg.format`` (see :class:`DataConfig`): a file prefix (``text``), a
    file (``tsv``, ``jsonl``; relative to ``cfg.path`` when set) or a split name (``disk``,
    ``hub``). Texts are kept verbatim except for a trailing ``\\r``; empty lines are kept so that
    line ``i`` is pair ``i``.

    Raises:
        DataError: missing files (listing the paths tried), unequal line counts (naming both files
            and counts), malformed lines/records (naming file and line), missing language keys,
            no line with a non-blank source (an empty file).
    """
    _check_split(cfg, split)
    return _require_examples(_LOADERS[cfg.format](cfg, split))


# ------------------------------------------------------------------ autoencoders and classifiers
def _tsv_rows(path: Path, skip_header: bool, columns: int, layout: str) -> Iterator[tuple[int, list[list[str]]]]:
    """Blocks of the rows of a TSV file (without the header line when ``skip_header``), each
    with the line number of its first row; every row must have ``columns`` fields
    (``columns=0``: any number, at least one)."""
    check_file(path)
    n = 0
    for lines in iter_line_blocks(path):
        first = n + 1
        rows = []
        for line in _strip_cr(lines):
            n += 1
            if n == 1 and skip_header:
                first += 1
                continue
            parts = line.split("\t")
            if columns and len(parts) != columns:
                raise DataError(
                    f"{path}:{n}: expected '{layout}' (exactly {columns - 1} TAB), found "
                    f"{len(parts) - 1} TABs"
                    + (" (is the first line a header? set data.skip_header=true)" if n == 1 else "")
                )
            rows.append(parts)
        if rows:
            yield first, rows


def open_monolingual(cfg: DataConfig, split: str) -> TextSource:
    """One split of monolingual text for an autoencoder as a :class:`TextSource` of pairs
    (sentence, the same sentence); see :func:`load_monolingual`."""
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "text":
        base = resolve_path(cfg, split)
        tried = [base, Path(f"{base}.{cfg.src_lang}"), Path(f"{base}.{cfg.src_lang}.gz")]
        found = _first_file(tried)
        if found is None:
            raise DataError(f"data file not found: tried {', '.join(map(str, tried))} (check data.path and the split)")

        def text_blocks() -> Blocks:
            for lines in iter_line_blocks(found):
                lines = _strip_cr(lines)
                yield lines, lines

        return TextSource(str(found), (found,), text_blocks, monolingual=True)
    if cfg.format == "tsv":
        path = resolve_path(cfg, split)
        check_file(path)

        def tsv_blocks() -> Blocks:
            for _, rows in _tsv_rows(path, cfg.skip_header, 0, "sentence"):
                lines = [r[0] for r in rows]
                yield lines, lines

        return TextSource(str(path), (path,), tsv_blocks, monolingual=True)
    one_column = dataclasses.replace(cfg, tgt_lang=cfg.src_lang)
    _check_split(cfg, split)
    files, name = _dataset_files(cfg, split)
    return _loaded_source(name, files, lambda: load_parallel(one_column, split), monolingual=True)


def load_monolingual(cfg: DataConfig, split: str) -> ParallelText:
    """One split of monolingual text for an autoencoder, as pairs (sentence, the same sentence).

    ``text``: ``split`` is a file (plain or .gz) or a prefix completed with ``.SRC_LANG``;
    ``tsv``: the first column; ``jsonl``/``disk``/``hub``: the column (or translation key)
    ``data.src_lang``. Empty lines are kept, so line ``i`` is pair ``i``.
    """
    return _require_examples(open_monolingual(cfg, split).load())


def open_labelled(cfg: DataConfig, split: str) -> TextSource:
    """One split of labelled sentences for a classifier as a :class:`TextSource` of pairs
    (sentence, label text); see :func:`load_labelled`."""
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "tsv":
        path = resolve_path(cfg, split)
        check_file(path)

        def tsv_blocks() -> Blocks:
            for first, rows in _tsv_rows(path, cfg.skip_header, 2, "sentence<TAB>label"):
                labels = [r[1].strip() for r in rows]
                for n, label in enumerate(labels, start=first):
                    if not label:
                        raise DataError(f"{path}:{n}: the label (second column) is empty")
                yield [r[0] for r in rows], labels

        return TextSource(str(path), (path,), tsv_blocks)
    if cfg.format == "text":
        raise DataError("task=classification reads data.format=tsv (sentence<TAB>label) or jsonl/disk/hub columns")
    _check_split(cfg, split)
    files, name = _dataset_files(cfg, split)

    def load() -> ParallelText:
        text = load_parallel(cfg, split)
        return ParallelText(src=text.src, tgt=[t.strip() for t in text.tgt], name=text.name)

    return _loaded_source(name, files, load)


def load_labelled(cfg: DataConfig, split: str) -> ParallelText:
    """One split of labelled sentences for a classifier, as pairs (sentence, label text).

    ``tsv``: ``sentence<TAB>label`` lines (``data.skip_header`` for a header line);
    ``jsonl``/``disk``/``hub``: the columns ``data.src_lang`` (sentence) and ``data.tgt_lang``
    (label, as text).
    """
    text = open_labelled(cfg, split).load()
    return _require_examples(text) if cfg.format == "tsv" else text
