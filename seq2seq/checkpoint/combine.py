"""New checkpoints made from others: the encoder of one joined with the decoder of another, and
the mean of a run's last ``step-N/`` checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from seq2seq.checkpoint.load import load_checkpoint, load_part, resolve_checkpoint, verify_checkpoint
from seq2seq.checkpoint.save import save_checkpoint
from seq2seq.config import config_from_dict
from seq2seq.data.tokenizer import TokenizerPair
from seq2seq.errors import CheckpointError, ConfigError


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
