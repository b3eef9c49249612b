"""Checkpoints: a directory that rebuilds a model and its tokenizers, written atomically.

Layout of a checkpoint directory::

    config.json          the full Config, plus format version and vocabulary sizes
    model.safetensors    weights (no pickle)
    spm.model            the SentencePiece model (or src.spm.model + tgt.spm.model)
    trainer_state.json   optimizer/scheduler/RNG state and progress for --resume: the
    trainer_state.safetensors  structure as JSON, its tensors in safetensors (no pickle)
    manifest.json        size and sha256 of every file above, checked at every load

Nothing is ever unpickled: a ``trainer_state.pt`` of older versions is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.

Every file is written under a temporary directory, flushed and fsynced; the directory is
then renamed into place. Replacing an existing checkpoint renames the old one aside first,
so at every instant either the old or the new checkpoint is complete on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, load_model, save_file

from seq2seq import CHECKPOINT_FORMAT, __version__
from seq2seq.config import Config, config_from_dict
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models import Composite, build_classifier, build_model

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAINER_STATE = "trainer_state.json"
TRAINER_TENSORS = "trainer_state.safetensors"
LEGACY_TRAINER_STATE = "trainer_state.pt"  # written by seq2seq 0.1 (pickle; loaded weights_only)
MANIFEST = "manifest.json"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    """The permissions a new file gets from the umask (0644 with the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    directory: str | Path,
    model: Composite,
    cfg: Config,
    tokenizers: TokenizerPair,
    trainer_state: Optional[dict[str, Any]] = None,
    extra: Optional[dict[str, Any]] = None,
) -> Path:
    """Write a complete checkpoint to ``directory`` atomically (see the module docstring).

    Raises:
        CheckpointError: the files could not be written (disk full, permissions, ...). The
            temporary directory is removed and the previous checkpoint, if any, is left intact.
    """
    final = Path(directory)
    tmp = final.with_name(final.name + ".tmp")
    if final.exists() and not final.is_dir():
        raise CheckpointError(f"{final} exists and is not a directory; give a new directory name")
    if final.is_dir() and any(final.iterdir()) and not (final / MANIFEST).is_file():
        raise CheckpointError(
            f"{final} is a directory that is not a checkpoint, and it would be replaced; give a new directory name"
        )
    try:
        recover_checkpoint(final)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        _write_files(tmp, model, cfg, tokenizers, trainer_state, extra)
    except Exception as e:  # OSError, and the errors torch/safetensors/sentencepiece wrap it in
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the previous checkpoint in {final} is intact" if final.is_dir() else "no checkpoint was written"
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0][:200] or type(e).__name__
        raise CheckpointError(
            f"cannot write checkpoint {final}: {reason}; {kept}. Free disk space or fix the "
            "permissions of the output directory, then continue with --resume"
        ) from None
    _swap_into_place(tmp, final)
    return final


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the complete directory ``tmp`` to ``final``. An existing ``final`` is first renamed
    to ``final.old`` and removed last: at every instant one of them is complete."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _write_files(
    tmp: Path,
    model: Composite,
    cfg: Config,
    tokenizers: TokenizerPair,
    trainer_state: Optional[dict[str, Any]],
    extra: Optional[dict[str, Any]],
) -> None:
    """Every file of a checkpoint into the (new, empty) directory ``tmp``, fsynced, manifest last."""
    meta = {
        "format": CHECKPOINT_FORMAT,
        "seq2seq_version": __version__,
        "src_vocab_size": tokenizers.src.vocab_size,
        "tgt_vocab_size": tokenizers.tgt.vocab_size,
        "num_parameters": model.num_parameters(),
        **(extra or {}),
        "config": cfg.to_dict(),
    }
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    save_weights(model, str(tmp / WEIGHTS))
    tokenizers.save(tmp)
    if trainer_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _flatten(trainer_state, tensors)
        save_file(tensors, str(tmp / TRAINER_TENSORS))
        (tmp / TRAINER_STATE).write_text(json.dumps(skeleton) + "\n", encoding="utf-8")

    files = sorted(p for p in tmp.iterdir() if p.is_file())
    mode = _file_mode()
    for p in files:
        os.chmod(p, mode)  # safetensors and tempfile create 0600 files: share like any other file
        _fsync_file(p)
    manifest = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _fsync_file(tmp / MANIFEST)
    _fsync_dir(tmp)


def save_weights(model: torch.nn.Module, path: str) -> None:
    """The model's state dict as safetensors, each shared (tied) tensor once, in identical bytes
    for identical weights (safetensors' ``save_model`` writes its notes on shared names in a
    random order, so the same weights could hash differently)."""
    state = model.state_dict()
    kept: dict[tuple[int, int, tuple[int, ...]], str] = {}
    shared: dict[str, str] = {}
    for name in sorted(state):
        tensor = state[name]
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in kept:
            shared[name] = kept[key]
        else:
            kept[key] = name
    tensors = {name: t.contiguous() for name, t in state.items() if name not in shared}
    save_file(tensors, path, metadata={"shared": json.dumps(shared, sort_keys=True)} if shared else None)


def _flatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON for ``value`` (nested dicts, lists, tuples, numbers, strings, tensors); tensors go to
    ``tensors`` under a fresh name and are referenced as ``{"tensor": name}``."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()
        return {"tensor": name}
    if isinstance(value, dict):  # keys may be ints (optimizer state): keep their type
        return {"dict": [[k, _flatten(v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_flatten(v, tensors) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"trainer state holds a {type(value).__name__}, which a checkpoint cannot store")


def _unflatten(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_flatten`; raises ValueError on anything it did not write."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {str(node)[:80]}")
    ((kind, body),) = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {k: _unflatten(v, tensors) for k, v in body}
    if kind in ("list", "tuple"):
        items = [_unflatten(v, tensors) for v in body]
        return items if kind == "list" else tuple(items)
    if kind == "value" and (body is None or isinstance(body, (bool, int, float, str))):
        return body
    raise ValueError(f"unexpected node {str(node)[:80]}")


def recover_checkpoint(final: Path) -> None:
    """After a crash between the two renames of a save, only ``final.old`` is complete: move it
    back before anything else touches ``.old``."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.is_dir() and (old / MANIFEST).is_file():
        os.replace(old, final)
        _fsync_dir(final.parent)


def copy_checkpoint(source: str | Path, directory: str | Path) -> Path:
    """An atomic copy of a complete checkpoint (hard links where the file system allows them:
    checkpoint files are never modified in place, only replaced). An existing ``directory`` is
    replaced with the same swap as :func:`save_checkpoint`, so a crash never loses both."""
    src, final = Path(source), Path(directory)
    tmp = final.with_name(final.name + ".tmp")

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    try:
        recover_checkpoint(final)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, copy_function=link_or_copy)
        _fsync_dir(tmp)
        _swap_into_place(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"cannot copy checkpoint {src} to {final}: {e.strerror or e}") from None
    return final


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
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{directory / MANIFEST} is corrupted (not valid JSON)") from None
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
        if _sha256(path) != entry.get("sha256"):
            raise CheckpointError(
                f"{path} is corrupted (its sha256 does not match {directory / MANIFEST}); "
                "use another checkpoint (e.g. a step-N/ directory of the run) or re-download it"
            )
    try:
        meta = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{directory / CONFIG} is corrupted (not valid JSON)") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{directory / CONFIG} is not a seq2seq checkpoint config (not a JSON object)")
    fmt = meta.get("format")
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{directory} has checkpoint format {fmt!r}; this seq2seq ({__version__}) reads format "
            f"{CHECKPOINT_FORMAT}. Use the seq2seq version that wrote it."
        )
    return meta


def weights_hash(directory: str | Path) -> str:
    """The sha256 of a checkpoint's weights (from its manifest): identifies the model."""
    path = resolve_checkpoint(directory)
    verify_checkpoint(path)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    return str(manifest[WEIGHTS]["sha256"])


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[Composite, Config, TokenizerPair, dict[str, Any]]:
    """Rebuild (model, config, tokenizers, metadata) from a checkpoint directory, in eval mode.

    The model is a :class:`Seq2SeqModel` (translation, autoencoder) or a :class:`Classifier`
    (``task: classification``; ``metadata["labels"]`` are its label texts).
    """
    path = resolve_checkpoint(directory)
    meta = verify_checkpoint(path)
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path / CONFIG}: no 'config' object; not a checkpoint written by seq2seq train")
    try:
        cfg = config_from_dict(meta["config"])
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path / CONFIG}: incompatible config ({e})") from None
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
        return _unflatten(json.loads((path / TRAINER_STATE).read_text(encoding="utf-8")), tensors)
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


def join_checkpoints(encoder_dir: str | Path, decoder_dir: str | Path, output_dir: str | Path) -> Path:
    """One checkpoint from the encoder part of one and the decoder part of another.

    Both must describe the same architecture (``model`` config section); the source tokenizer
    comes from the encoder's checkpoint, the target tokenizer from the decoder's. This is the
    staged regime's join: no training happens here.
    """
    model, cfg, enc_tokenizers, _ = load_checkpoint(encoder_dir)
    if "decoder" not in model.PARTS:
        raise CheckpointError(
            f"{encoder_dir} is a classifier checkpoint: the joined model takes its "
            "architecture from the encoder's checkpoint and needs a decoder. To reuse a "
            "classifier's encoder, train with train.init_encoder instead"
        )
    enc_model = cfg.to_dict()["model"]
    dec_meta = verify_checkpoint(resolve_checkpoint(decoder_dir))
    try:  # through config_from_dict: fields added since it was saved take their defaults
        dec_model = config_from_dict(dec_meta["config"]).to_dict()["model"]
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{decoder_dir}: incompatible config ({e})") from None
    differ = sorted(k for k in enc_model if enc_model[k] != dec_model.get(k))
    if differ:
        raise CheckpointError(
            f"cannot join {encoder_dir} and {decoder_dir}: their model sections differ in "
            + ", ".join(f"{k} ({enc_model[k]!r} vs {dec_model.get(k)!r})" for k in differ)
        )
    _, dec_tokenizers = load_part(model, decoder_dir, "decoder")
    src, tgt = enc_tokenizers.src, dec_tokenizers.tgt
    tokenizers = (
        TokenizerPair(src) if src.fingerprint == tgt.fingerprint and enc_tokenizers.joint else TokenizerPair(src, tgt)
    )
    if cfg.model.share_embeddings and not tokenizers.joint:
        raise CheckpointError(
            f"cannot join {encoder_dir} and {decoder_dir}: the model shares source and target "
            "embeddings, but the two checkpoints have different SentencePiece models"
        )
    cfg.train.stage = "joint"
    cfg.train.init_encoder, cfg.train.init_decoder = str(encoder_dir), str(decoder_dir)
    cfg.tokenizer.joint = tokenizers.joint
    extra = {"joined": {"encoder": str(encoder_dir), "decoder": str(decoder_dir)}}
    return save_checkpoint(output_dir, model, cfg, tokenizers, None, extra)


STEP_PREFIX = "step-"  # step-N/: the checkpoint of update N (train.keep_last)


def step_number(path: Path) -> Optional[int]:
    """N for a ``step-N`` checkpoint directory, else None (the one parser of that name)."""
    digits = path.name[len(STEP_PREFIX) :] if path.name.startswith(STEP_PREFIX) else ""
    return int(digits) if digits.isdigit() and path.is_dir() else None


def step_checkpoints(run_dir: str | Path) -> list[Path]:
    """A run's ``step-N/`` checkpoints, oldest first."""
    steps = [p for p in Path(run_dir).glob(STEP_PREFIX + "*") if step_number(p) is not None]
    return sorted(steps, key=lambda p: step_number(p) or 0)


def last_checkpoints(run_dir: str | Path, count: int) -> list[Path]:
    """The ``count`` latest ``step-N/`` checkpoints of a training run, oldest first."""
    run = Path(run_dir)
    steps = step_checkpoints(run)
    if count < 1:
        raise CheckpointError(f"the number of checkpoints to average must be at least 1, got {count}")
    if len(steps) < count:
        raise CheckpointError(
            f"{run} has {len(steps)} step-N checkpoint(s), fewer than the {count} asked for; "
            "train with train.keep_last >= N to keep that many"
        )
    return steps[-count:]


def average_checkpoints(directories: list[str | Path], output_dir: str | Path) -> Path:
    """One checkpoint whose weights are the mean of those of ``directories`` (e.g. the last
    checkpoints of one run: fairseq's and JoeyNMT's last-BLEU-point trick).

    Every checkpoint must have the same model section and the same SentencePiece model(s);
    the config, tokenizers and metadata of the last one are kept. The mean is taken in float64.
    """
    if not directories:
        raise CheckpointError("nothing to average: give at least one checkpoint")
    model, cfg, tokenizers, meta = load_checkpoint(directories[-1])
    reference = cfg.to_dict()["model"]
    total = {name: t.double().clone() for name, t in model.state_dict().items()}
    for directory in directories[:-1]:
        other, other_cfg, other_tok, _ = load_checkpoint(directory)
        if other_cfg.to_dict()["model"] != reference or other_cfg.task != cfg.task:
            raise CheckpointError(f"cannot average {directory} with {directories[-1]}: their model sections differ")
        if (other_tok.src.fingerprint, other_tok.tgt.fingerprint) != (
            tokenizers.src.fingerprint,
            tokenizers.tgt.fingerprint,
        ):
            raise CheckpointError(
                f"cannot average {directory} with {directories[-1]}: their SentencePiece "
                "models differ, so the same ids mean different tokens"
            )
        for name, tensor in other.state_dict().items():
            total[name] += tensor.double()
    state = model.state_dict()
    model.load_state_dict({name: (total[name] / len(directories)).to(state[name].dtype) for name in state})
    extra = {k: v for k, v in meta.items() if k in ("labels", "step", "epoch")}
    extra["averaged"] = [str(d) for d in directories]
    return save_checkpoint(output_dir, model, cfg, tokenizers, None, extra)
