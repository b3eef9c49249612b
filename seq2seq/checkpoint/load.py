"""Reading checkpoints: finding the directory (or what a crash mid-save left), checking every
file against the manifest, and rebuilding the model, its tokenizers, a part of it, or the
trainer state, with errors that say what is wrong and what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model

from seq2seq import CHECKPOINT_FORMAT, __version__
from seq2seq.checkpoint.disk import (
    CONFIG,
    LEGACY_TRAINER_STATE,
    MANIFEST,
    TRAINER_STATE,
    TRAINER_TENSORS,
    WEIGHTS,
    sha256_file,
    unflatten_state,
)
from seq2seq.config import Config, config_from_dict
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models import Composite, build_classifier, build_model


def resolve_checkpoint(directory: str | Path) -> Path:
    """The directory to read: ``directory`` itself, or ``directory.old`` left by a crash mid-save."""
    path = Path(directory)
    if path.is_dir():
        return path
    old = path.with_name(path.name + ".old")
    if old.is_dir() and (old / MANIFEST).is_file():
        return old
    if path.exists():
        raise CheckpointError(f"checkpoint {path} is not a directory")
    raise CheckpointError(f"checkpoint directory not found: {path}")


def verify_checkpoint(directory: Path, *, need_trainer_state: bool = False) -> dict[str, Any]:
    """Check that the files are all there and match the manifest (size and sha256); return the
    parsed config.json. Raises :class:`CheckpointError` naming the first bad file."""
    missing = [name for name in (CONFIG, WEIGHTS, MANIFEST) if not (directory / name).is_file()]
    if need_trainer_state:
        missing += [name for name in (TRAINER_STATE, TRAINER_TENSORS) if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(
            f"checkpoint {directory} is incomplete: missing {', '.join(missing)} "
            "(point --checkpoint at a directory written by 'seq2seq train', e.g. runs/NAME/best)"
        )
    manifest = _read_json(directory / MANIFEST)
    if not isinstance(manifest, dict) or not all(isinstance(e, dict) for e in manifest.values()):
        raise CheckpointError(f"{directory / MANIFEST} is corrupted (not a manifest of files)")
    for name, entry in manifest.items():
        if Path(name).name != name or name.startswith("."):
            raise CheckpointError(f"{directory / MANIFEST} is corrupted (bad file name {name!r})")
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {directory} is incomplete: missing {name}")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise CheckpointError(
                f"{path} is truncated or corrupted ({size} bytes, the manifest says {entry.get('bytes')}); "
                "use another checkpoint (e.g. a step-N/ directory of the run) or re-download it"
            )
        if _file_sha256(path) != entry.get("sha256"):
            raise CheckpointError(
                f"{path} is corrupted (its sha256 does not match {directory / MANIFEST}); "
                "use another checkpoint (e.g. a step-N/ directory of the run) or re-download it"
            )
    meta = _read_json(directory / CONFIG)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{directory / CONFIG} is not a seq2seq checkpoint config (not a JSON object)")
    fmt = meta.get("format")
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{directory} has checkpoint format {fmt!r}; this seq2seq ({__version__}) reads format "
            f"{CHECKPOINT_FORMAT}. Use the seq2seq version that wrote it."
        )
    return meta


# sha256 of files hashed in this process, by file identity: a checkpoint read twice (its config
# by the CLI, then its weights by the loader; a server's /info and its model) is hashed once.
# Any write to a file changes its ctime, which no user call can set back, so a changed file is
# always hashed again.
_HASHED: dict[tuple[int, int, int, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """:func:`sha256_file`, once per file version per process."""
    st = path.stat()
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if identity not in _HASHED:
        _HASHED[identity] = sha256_file(path)
    return _HASHED[identity]


def _read_json(path: Path) -> Any:
    """The JSON value in the file ``path``; a CheckpointError when it is not valid JSON in UTF-8."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is corrupted (not valid JSON)") from None


def weights_hash(directory: str | Path) -> str:
    """The sha256 of a checkpoint's weights (from its verified manifest): identifies the model."""
    path = resolve_checkpoint(directory)
    verify_checkpoint(path)
    return str(_read_json(path / MANIFEST)[WEIGHTS]["sha256"])


def checkpoint_config(path: Path, meta: dict[str, Any]) -> Config:
    """The :class:`Config` in ``meta`` (what :func:`verify_checkpoint` returned for the checkpoint
    directory ``path``), every key checked; a missing or incompatible one is a CheckpointError."""
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path / CONFIG}: no 'config' object; not a checkpoint written by seq2seq train")
    try:
        return config_from_dict(meta["config"])
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path / CONFIG}: incompatible config ({e})") from None


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[Composite, Config, TokenizerPair, dict[str, Any]]:
    """Rebuild (model, config, tokenizers, metadata) from a checkpoint directory, in eval mode.

    The model is a :class:`Seq2SeqModel` (translation, autoencoder) or a :class:`Classifier`
    (``task: classification``; ``metadata["labels"]`` are its label texts).
    """
    path = resolve_checkpoint(directory)
    meta = verify_checkpoint(path)
    cfg = checkpoint_config(path, meta)
    sizes = [meta.get("src_vocab_size"), meta.get("tgt_vocab_size")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        raise CheckpointError(
            f"{path / CONFIG}: src_vocab_size and tgt_vocab_size must be positive integers, got {sizes}"
        )
    tokenizers = TokenizerPair.load(path)
    try:
        if cfg.task == "classification":
            labels = meta.get("labels")
            if not isinstance(labels, list) or len(labels) < 2:
                raise CheckpointError(f"{path / CONFIG}: a classifier checkpoint needs its 'labels' list")
            model: Composite = build_classifier(cfg.model, sizes[0], len(labels))
        else:
            model = build_model(cfg.model, sizes[0], sizes[1])
    except ValueError as e:
        raise CheckpointError(f"{path / CONFIG}: the model it describes cannot be built ({e})") from None
    load_weights(model, path, device)
    model.to(device).eval()
    return model, cfg, tokenizers, meta


def load_weights(model: Composite, directory: Path, device: str | torch.device = "cpu") -> None:
    """Load ``directory/model.safetensors`` into ``model`` in place; every tensor must match."""
    try:
        missing, unexpected = load_model(model, str(directory / WEIGHTS), strict=False, device=str(device))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = next((line for line in lines if "size mismatch" in line), lines[0] if lines else type(e).__name__)
        raise CheckpointError(f"{directory / WEIGHTS} could not be read ({detail[:300]})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{directory / WEIGHTS} does not match the model in {directory / CONFIG} "
            f"(missing: {sorted(missing)[:5]}, unexpected: {sorted(unexpected)[:5]})"
        )


def load_trainer_state(directory: str | Path) -> dict[str, Any]:
    """The resume state. Nothing is unpickled: JSON plus safetensors (or, for a checkpoint of
    seq2seq 0.1, ``torch.load(weights_only=True)``, which refuses anything but tensors)."""
    path = resolve_checkpoint(directory)
    if not (path / TRAINER_STATE).is_file() and (path / LEGACY_TRAINER_STATE).is_file():
        verify_checkpoint(path)
        try:
            return torch.load(path / LEGACY_TRAINER_STATE, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"{path / LEGACY_TRAINER_STATE} was refused: it is corrupted or holds objects other than "
                f"tensors and plain containers ({str(e).splitlines()[0][:200]})"
            ) from None
    verify_checkpoint(path, need_trainer_state=True)
    try:
        tensors = load_file(str(path / TRAINER_TENSORS))
        return unflatten_state(json.loads((path / TRAINER_STATE).read_text(encoding="utf-8")), tensors)
    except Exception as e:  # JSON, UTF-8, safetensors and structure errors alike
        raise CheckpointError(
            f"{path / TRAINER_STATE} could not be read ({str(e).splitlines()[0][:200]}); "
            "resume from another checkpoint (a step-N/ directory) or start a new run"
        ) from None


def load_part(model: Composite, directory: str | Path, part: str) -> tuple[Config, TokenizerPair]:
    """Copy the ``encoder`` or ``decoder`` part (see ``PARTS`` of the model classes) of the
    checkpoint in ``directory`` into ``model``; return that checkpoint's config and tokenizers.

    The encoder of any checkpoint (translation, autoencoder, classifier) loads into any model
    with the same encoder architecture. Every tensor of the part must have the same shape in
    both models. With shared source/target embeddings the table belongs to both parts: the part
    loaded last wins.
    """
    if part not in model.PARTS or part not in ("encoder", "decoder"):
        raise ValueError(f"part must be one of encoder, decoder (of this model), got '{part}'")
    source, cfg, tokenizers, _ = load_checkpoint(directory)
    if part not in source.PARTS:
        raise CheckpointError(f"cannot load a {part} from {directory}: that checkpoint ({cfg.task}) has none")
    for name in model.PARTS[part]:
        target, given = getattr(model, name, None), getattr(source, name, None)
        if target is None and given is None:
            continue
        if target is None or given is None:
            has, lacks = ("the checkpoint", "this model") if target is None else ("this model", "the checkpoint")
            why = "model.bottleneck differs" if name == "bottleneck" else "model.context_target_dim differs"
            raise CheckpointError(
                f"cannot load the {part} of {directory}: {has} has a '{name}' and {lacks} does not ({why})"
            )
        try:
            target.load_state_dict(given.state_dict())
        except RuntimeError as e:
            detail = "; ".join(line.strip() for line in str(e).splitlines()[1:3])
            raise CheckpointError(
                f"the {part} in {directory} does not fit this model's architecture ({detail})"
            ) from None
    return cfg, tokenizers
