"""Reading configs: YAML files and ``--set`` overrides onto the dataclasses of
:mod:`seq2seq.config.sections`, every key and type checked, then :func:`validate`."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from seq2seq.config.sections import Config
from seq2seq.config.validation import validate
from seq2seq.errors import ConfigError

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert the harmless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X], or X | Y: the first type the value fits
        optional = type(None) in typing.get_args(tp)
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and optional:
            return None
        if len(args) == 1:
            return _coerce(value, args[0], key)
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        kinds = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
        names = " or ".join("a list" if typing.get_origin(a) is list else kinds.get(a, _type_name(a)) for a in args)
        raise ConfigError(f"config key '{key}' must be {names}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and value.strip() == "":
            return []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 5e-4 (no dot) as a string
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
    raise ConfigError(f"config key '{key}' has an unsupported type {_type_name(tp)}")


def _build(cls: type, values: Any, prefix: str) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the config"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown config key '{full}' (known keys here: {known})")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a :class:`Config` from nested dicts, checking every key and type.

    ``auto`` values that depend on the task are resolved here, so a saved config is explicit:
    an autoencoder's ``model.attention=auto`` is ``none`` (with attention the decoder could copy
    the input and the context vector would learn nothing), ``model.context_target_dim`` of
    per-item classes (``model.item_classes``) is their blocks' size, and ``train.early_stop_metric=auto``
    is ``accuracy`` for classification, ``loss`` for an image autoencoder, ``bleu`` otherwise.
    """
    cfg = _build(Config, values, "")
    if cfg.task == "autoencoder" and cfg.model.attention == "auto":
        cfg.model.attention = "none"
    m = cfg.model
    if m.item_classes > 0 and not m.context_target_dim:  # one block of item_classes + 1 per item
        m.context_target_dim = m.context_target_blocks * (m.item_classes + 1)
    if cfg.train.early_stop_metric == "auto":
        metric = "loss" if cfg.model.decoder == "image" else "bleu"  # an image autoencoder: its MSE
        cfg.train.early_stop_metric = "accuracy" if cfg.task == "classification" else metric
    validate(cfg)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=5e-4"`` -> (["train", "lr"], 0.0005). Values are parsed as YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value (e.g. train.lr=5e-4)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has no key before '='")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML reads 5e-4 as a string (it wants 5.0e-4); accept the usual float spellings.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to nested dicts (before type checking)."""
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return values


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice in one section", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (empty file: ``{}``).

    Raises:
        ConfigError: the file is missing, a directory or unreadable; not UTF-8; not valid YAML
            (the message names the line); a key is repeated; or the top level is not a mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config {p} is a directory; give a YAML file (see recipes/*/ for examples)")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror or e} (check its permissions)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{p}:{line}: not valid UTF-8; save the config as UTF-8") from None
    try:
        values = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds no Python objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f"{p}:{mark.line + 1}"
        elif isinstance(e, yaml.reader.ReaderError):  # a control character: it has a position only
            where = f"{p}:{text.count(chr(10), 0, e.position) + 1}"
        else:
            where = str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{p}: a config must be a mapping of sections (e.g. 'train: {{lr: 5.0e-4}}'), got a {type(values).__name__}"
        )
    return values


def load_config(
    path: Optional[Union[str, Path]] = None,
    overrides: Optional[list[str]] = None,
    default_task: Optional[str] = None,
) -> Config:
    """Read a YAML config file (or start from defaults when ``path`` is None) and apply overrides.

    ``default_task``: the task when neither the file nor an override names one.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = read_yaml(path)
    apply_overrides(values, overrides or [])
    if default_task:
        values.setdefault("task", default_task)
    try:
        return config_from_dict(values)
    except ConfigError as e:
        # Name where the bad value came from: a --set override (its key, a key inside it, or a
        # section it wrongly goes into), else the file.
        for text in reversed(overrides or []):
            parts = text.split("=", 1)[0].strip().split(".")
            keys = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
            if any(f"'{k}'" in str(e) for k in keys) or f"'{keys[0]}." in str(e) or f"'{keys[0]}[" in str(e):
                raise ConfigError(f"--set {text}: {e}") from None
        if path is not None:
            raise ConfigError(f"{path}: {e}") from None
        raise
