"""Reading the ``jsonl``, ``disk`` and ``hub`` formats through Hugging Face ``datasets``: a
``translation`` column of ``{lang: text}`` records or one column per language. These splits are
loaded whole (not streamed yet); every problem a user can fix becomes a :class:`DataError` that
names the file (and line, when there is one).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seq2seq.config import DataConfig
from seq2seq.data.sources import ParallelText
from seq2seq.data.text_formats import _strip_cr, resolve_path
from seq2seq.data.textio import check_file, check_text_file, read_lines
from seq2seq.errors import DataError


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
