"""Loading parallel text (source/target sentence pairs) in the formats of :class:`DataConfig`.

``text`` and ``tsv`` files are read with :func:`seq2seq.data.textio.read_lines` (strict UTF-8,
gzip, line-exact); ``jsonl``, ``disk`` and ``hub`` go through Hugging Face ``datasets``. Every
problem a user can fix becomes a :class:`DataError` that names the file (and line, when there is
one)::

    train = load_parallel(cfg.data, cfg.data.train)   # ParallelText(src=[...], tgt=[...], name=...)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.config import DataConfig
from seq2seq.data.textio import check_text_file, read_lines
from seq2seq.errors import DataError

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
            raise DataError(
                f"{self.name}: {len(self.src)} source but {len(self.tgt)} target sentences"
            )


# ------------------------------------------------------------------------------------ helpers
def _require_examples(text: ParallelText) -> ParallelText:
    """``text`` itself; a DataError when it has no example with a non-blank source."""
    if not any(s.strip() for s in text.src):
        what = "no lines" if not len(text) else f"only empty or blank lines ({len(text)})"
        raise DataError(
            f"{text.name}: {what}, so nothing to train or validate on; check the file and "
            "data.train/data.valid"
        )
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
def _load_text(cfg: DataConfig, prefix: str) -> ParallelText:
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
    src, tgt = read_lines(files[0]), read_lines(files[1])
    if len(src) != len(tgt):
        raise DataError(
            f"line counts differ: {files[0]} has {len(src)} lines, {files[1]} has {len(tgt)}; "
            "parallel files must be aligned line by line"
        )
    return ParallelText(src=src, tgt=tgt, name=f"{base}.{{{cfg.src_lang},{cfg.tgt_lang}}}")


def _load_tsv(cfg: DataConfig, file: str) -> ParallelText:
    path = resolve_path(cfg, file)
    src: list[str] = []
    tgt: list[str] = []
    for n, line in enumerate(read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(
                f"{path}:{n}: expected 'source<TAB>target' (exactly one TAB), found "
                f"{len(parts) - 1} TABs"
            )
        src.append(parts[0])
        tgt.append(parts[1])
    return ParallelText(src=src, tgt=_strip_cr(tgt), name=str(path))


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
        raise DataError(
            f"{target}: not a dataset saved with save_to_disk ({_first_line(e)})"
        ) from None
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
        raise DataError(
            "data.format=hub needs data.path (the dataset name on the Hugging Face Hub)"
        )
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
    if cfg.format not in _LOADERS:
        raise DataError(f"unknown data.format '{cfg.format}' (use one of {', '.join(FORMATS)})")
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    return _require_examples(_LOADERS[cfg.format](cfg, split))


# ------------------------------------------------------------------ autoencoders and classifiers
def _tsv_rows(cfg: DataConfig, file: str, columns: int, layout: str) -> tuple[Path, list[list[str]]]:
    """The rows of a TSV file (without the header line when ``cfg.skip_header``); every row must
    have ``columns`` fields (``columns=0``: any number, at least one)."""
    path = resolve_path(cfg, file)
    lines = _strip_cr(read_lines(path))
    start = 1 if cfg.skip_header else 0
    rows = []
    for n, line in enumerate(lines[start:], start=start + 1):
        parts = line.split("\t")
        if columns and len(parts) != columns:
            raise DataError(f"{path}:{n}: expected '{layout}' (exactly {columns - 1} TAB), found {len(parts) - 1} TABs"
                            + (" (is the first line a header? set data.skip_header=true)" if n == 1 else ""))
        rows.append(parts)
    return path, rows


def load_monolingual(cfg: DataConfig, split: str) -> ParallelText:
    """One split of monolingual text for an autoencoder, as pairs (sentence, the same sentence).

    ``text``: ``split`` is a file (plain or .gz) or a prefix completed with ``.SRC_LANG``;
    ``tsv``: the first column; ``jsonl``/``disk``/``hub``: the column (or translation key)
    ``data.src_lang``. Empty lines are kept, so line ``i`` is pair ``i``.
    """
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "text":
        base = resolve_path(cfg, split)
        tried = [base, Path(f"{base}.{cfg.src_lang}"), Path(f"{base}.{cfg.src_lang}.gz")]
        found = _first_file(tried)
        if found is None:
            raise DataError(f"data file not found: tried {', '.join(map(str, tried))} (check data.path and the split)")
        lines = _strip_cr(read_lines(found))
        return _require_examples(ParallelText(src=lines, tgt=list(lines), name=str(found)))
    if cfg.format == "tsv":
        path, rows = _tsv_rows(cfg, split, 0, "sentence")
        lines = [r[0] for r in rows]
        return _require_examples(ParallelText(src=lines, tgt=list(lines), name=str(path)))
    one_column = dataclasses.replace(cfg, tgt_lang=cfg.src_lang)
    text = load_parallel(one_column, split)
    return ParallelText(src=text.src, tgt=list(text.src), name=text.name)


def load_labelled(cfg: DataConfig, split: str) -> ParallelText:
    """One split of labelled sentences for a classifier, as pairs (sentence, label text).

    ``tsv``: ``sentence<TAB>label`` lines (``data.skip_header`` for a header line);
    ``jsonl``/``disk``/``hub``: the columns ``data.src_lang`` (sentence) and ``data.tgt_lang``
    (label, as text).
    """
    if not split:
        raise DataError(f"no split given for data.format={cfg.format} (empty file name/split)")
    if cfg.format == "tsv":
        path, rows = _tsv_rows(cfg, split, 2, "sentence<TAB>label")
        labels = [r[1].strip() for r in rows]
        for n, label in enumerate(labels, start=2 if cfg.skip_header else 1):
            if not label:
                raise DataError(f"{path}:{n}: the label (second column) is empty")
        return _require_examples(ParallelText(src=[r[0] for r in rows], tgt=labels, name=str(path)))
    if cfg.format == "text":
        raise DataError("task=classification reads data.format=tsv (sentence<TAB>label) or jsonl/disk/hub columns")
    text = load_parallel(cfg, split)
    return ParallelText(src=text.src, tgt=[t.strip() for t in text.tgt], name=text.name)
