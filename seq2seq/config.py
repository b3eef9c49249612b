"""Typed configuration: YAML files mapped onto dataclasses, overridable from the command line.

A config names its ``task`` and has six sections (``data``, ``tokenizer``, ``model``, ``train``,
``search``, ``autoencoder``); every field has a default, so a YAML file only names what it
changes. Unknown keys and values of the wrong type are errors that name the key::

    cfg = load_config("recipes/translation/transformer.yaml", ["train.lr=5e-4"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from seq2seq.errors import ConfigError


@dataclass
class DataConfig:
    """Where the parallel data is and how it is filtered.

    ``format`` decides what ``train``/``valid``/``test`` mean:
      - ``text``: a file prefix; ``PREFIX.SRC_LANG`` and ``PREFIX.TGT_LANG`` (or ``.gz``) are read;
      - ``tsv``: a file with ``source<TAB>target`` lines;
      - ``jsonl``: a file of ``{"translation": {SRC_LANG: ..., TGT_LANG: ...}}`` lines
        (or flat ``{SRC_LANG: ..., TGT_LANG: ...}`` objects);
      - ``disk``: a split name of a dataset saved with ``save_to_disk`` at ``path``;
      - ``hub``: a split name of the hub dataset ``path`` (config ``hub_config``).
    Relative file names are resolved against ``path`` (when set).
    """

    format: str = "text"
    path: str = ""
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    train: str = "train"
    valid: str = "valid"
    test: str = ""
    hub_config: str = ""
    max_src_tokens: int = 128  # longer training pairs are dropped (and counted)
    max_tgt_tokens: int = 128
    min_tokens: int = 1
    # Context targets (model.context_target_dim > 0): one vector per line of the train/valid
    # split, in a .npy file of shape (lines, dim) or a text file with one line of
    # whitespace-separated numbers per example. Relative names are resolved against ``path``.
    context_targets: str = ""
    valid_context_targets: str = ""
    # task autoencoder: one sentence per line (text: the file itself, or PREFIX.SRC_LANG;
    # tsv: the first column); task classification: ``sentence<TAB>label`` (tsv) or the
    # columns SRC_LANG (text) and TGT_LANG (label) of a jsonl/disk/hub dataset.
    skip_header: bool = False  # tsv: the first line is a header (e.g. "sentence<TAB>label")
    # Source normalisation before the tokenizer, in training and in translate (see
    # seq2seq/data/normalize.py): none | numerals (1,000 -> 1000, 007 -> 7, 3.140 -> 3.14).
    normalize: str = "none"
    # Where the tokenized training data (and SentencePiece models trained on it) are kept for
    # the next run (seq2seq/data/store.py). Empty: .seq2seq-cache/ beside the training data, or
    # ~/.cache/seq2seq when that directory is not writable. Relative: to the working directory.
    cache_dir: str = ""


@dataclass
class TokenizerConfig:
    """SentencePiece subword model: trained from the training data unless ``model`` is given."""

    model_type: str = "bpe"  # bpe | unigram | char | word
    vocab_size: int = 8000
    # Separate vocabularies only: the source side may use another type/size (e.g. char
    # for digits, word for their spelled-out targets). Empty / 0: same as the target.
    src_model_type: str = ""
    src_vocab_size: int = 0
    joint: bool = True  # one model for both sides (needed for shared embeddings)
    model: str = ""  # an existing .model file to reuse (joint, or source side)
    tgt_model: str = ""  # an existing .model file for the target side (separate vocabularies)
    character_coverage: float = 1.0
    max_sentences: int = 2_000_000  # SentencePiece input_sentence_size
    lowercase: bool = False


@dataclass
class ModelConfig:
    """Encoder/decoder architecture. Any encoder pairs with any decoder."""

    encoder: str = "transformer"  # transformer | gru
    decoder: str = "transformer"  # transformer | gru
    # none: the decoder sees only the context vector; bahdanau (additive) / luong
    # (multiplicative) for GRU decoders; multihead for Transformer decoders;
    # auto: bahdanau for GRU, multihead for Transformer.
    attention: str = "auto"
    d_model: int = 256  # embedding size and hidden size of every layer
    enc_layers: int = 3
    dec_layers: int = 3
    heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.0
    embed_dropout: float = -1.0  # <0: same as dropout
    context_dim: int = 0  # size of the context vector; 0: d_model
    pooling: str = "auto"  # how the context vector is made: mean | max | final | auto
    positions: str = "sinusoidal"  # sinusoidal | learned (Transformer)
    max_positions: int = 1024
    bidirectional: bool = True  # GRU encoder
    tie_embeddings: bool = True  # decoder input and output embeddings
    share_embeddings: bool = True  # source and target embeddings (needs a joint vocabulary)
    # >0: an interface vector of this size between encoder and decoder, which staged training
    # fits to given vectors (data.context_targets); split into context_target_blocks one-hot
    # blocks (loss ce) or regressed (loss mse). Needs attention: none.
    context_target_dim: int = 0
    context_target_blocks: int = 1
    context_target_loss: str = "ce"  # ce | mse
    # The context vector's form (autoencoders): plain (the encoder's vector); variational
    # (z = mu + sigma * eps, KL to N(0, I)); binary (sigmoid code layer with Gaussian noise in
    # training, rounded to bits at inference: semantic hashing). The size is context_dim.
    bottleneck: str = "plain"
    binary_noise: float = 1.0  # std of the noise added before the sigmoid while training
    classifier_hidden: int = 0  # task classification: hidden layer of the head (0: a linear head)
    # What the head reads: the context vector, or the context vector concatenated with the
    # masked max / mean of the encoder's per-position states.
    classifier_features: str = "context"  # context | context+max | context+mean


@dataclass
class TrainConfig:
    """Optimisation, validation, checkpoints."""

    output_dir: str = "runs/experiment"
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    cpu_kernels: bool = True  # on CPU: oneDNN fp32 linears and a cheaper dropout mask (models/cpu_kernels.py)
    threads: int = 0  # torch CPU threads; 0: torch's default
    max_tokens: int = 4096  # token budget per batch (source or target side, the larger)
    max_sentences: int = 0  # cap on sentences per batch; 0: none
    accumulate: int = 1  # gradient accumulation steps
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    weight_decay: float = 0.0001
    scheduler: str = "inverse_sqrt"  # inverse_sqrt | plateau | constant
    warmup_steps: int = 4000
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-6
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # 0: no clipping
    max_epochs: int = 100
    max_steps: int = 0  # 0: no limit
    max_minutes: float = 0.0  # stop (validate, save) after this much training time; 0: no limit
    valid_every: int = 0  # steps between validations; 0: once per epoch
    # Decode the validation set (greedy) and compute BLEU besides chrF and exact match (which are
    # computed whenever it is decoded: valid_bleu or an early_stop_metric other than loss).
    valid_bleu: bool = True
    valid_max_sentences: int = 0  # 0: the whole validation set
    # auto: bleu (translation, autoencoder: BLEU of the greedy reconstruction), accuracy
    # (classification); or loss | exact_match
    early_stop_metric: str = "auto"
    patience: int = 10  # validations without improvement before stopping; 0: never
    keep_last: int = 2  # step checkpoints kept besides best and last
    save_every: int = 0  # updates between saves of last/ (besides each validation's); 0: at validations only
    max_bad_updates: int = 10  # stop after this many updates in a row with a non-finite loss or gradient
    log_every: int = 100
    tensorboard: bool = False  # also log to OUTPUT_DIR/tensorboard (pip install seq2seq[tensorboard])
    progress: bool = True
    freeze: list[str] = field(default_factory=list)  # parts kept fixed: encoder, decoder (forward only)
    # What is trained: joint (end-to-end, input -> output); encoder (input -> the context
    # target, data.context_targets); decoder (given context target vectors -> output).
    stage: str = "joint"
    # Start from the encoder part / decoder part of other checkpoints (directories). The
    # tokenizer of that side comes with it; a conflicting one is refused.
    init_encoder: str = ""
    init_decoder: str = ""


@dataclass
class AutoencoderConfig:
    """Task ``autoencoder``: input noise (denoising) and the variational objective.

    Noise applies to the encoder's input while training only; the target is the clean
    sentence, and nothing is noised at validation or inference.
    """

    drop: float = 0.1  # probability of deleting each input token
    mask: float = 0.1  # probability of replacing each input token with <unk>
    shuffle: float = 0.0  # probability that a sentence is locally shuffled ...
    shuffle_distance: int = 3  # ... with no token moving more than this many positions
    # Variational (model.bottleneck=variational): loss = reconstruction + weight(step) * KL,
    # weight rising from 0 to kl_weight over kl_anneal_steps updates (linear or logistic).
    kl_schedule: str = "logistic"  # linear | logistic | constant
    kl_anneal_steps: int = 10000
    kl_weight: float = 1.0
    word_dropout: float = 0.0  # decoder inputs replaced with <unk> (Bowman et al. 2016)


@dataclass
class SearchConfig:
    """Decoding settings, saved with a checkpoint. The decoding commands (``seq2seq translate``,
    ``evaluate``, ``reconstruct``) have one flag per field, made from its type and ``help``
    (``--beam``, ``--max-len-a``, ...), that overrides the checkpoint's value."""

    beam: int = field(default=5, metadata={"help": "beam size (1 = greedy)"})
    length_penalty: float = field(
        default=1.0, metadata={"help": "rank hypotheses by log-prob / length**A", "metavar": "A"}
    )
    max_len_a: float = field(
        default=1.5, metadata={"help": "maximum output length = A * source length + B", "metavar": "A"}
    )
    max_len_b: int = field(default=10, metadata={"help": "B of the maximum output length", "metavar": "B"})
    min_len: int = field(default=0, metadata={"help": "no end of sentence before N output tokens"})
    # A decoding batch holds at most batch_tokens source tokens (padding included) and at most
    # batch_rows hypotheses (sentences x beam). The row cap bounds a step's logits (rows x
    # vocabulary floats) and the peak memory: past a few hundred rows on a CPU the output layer and
    # log-softmax fall out of cache and cost more per row, so with the cap beam search keeps its
    # speed at any token budget while greedy search gains from a large one. Raise both on a GPU.
    # Measurements: docs/performance.md, "Figures behind code defaults".
    batch_tokens: int = field(default=6000, metadata={"help": "source tokens per decoding batch (padding included)"})
    batch_rows: int = field(default=512, metadata={"help": "hypotheses (sentences x beam) per decoding batch"})


@dataclass
class Config:
    task: str = "translation"  # translation | autoencoder | classification
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert the harmless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
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
    the input and the context vector would learn nothing), and ``train.early_stop_metric=auto``
    is ``accuracy`` for classification, ``bleu`` otherwise.
    """
    cfg = _build(Config, values, "")
    if cfg.task == "autoencoder" and cfg.model.attention == "auto":
        cfg.model.attention = "none"
    if cfg.train.early_stop_metric == "auto":
        cfg.train.early_stop_metric = "accuracy" if cfg.task == "classification" else "bleu"
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


_CHOICES = {
    "data.format": ("text", "tsv", "jsonl", "disk", "hub"),
    "data.normalize": ("none", "numerals"),
    "tokenizer.model_type": ("bpe", "unigram", "char", "word"),
    "tokenizer.src_model_type": ("", "bpe", "unigram", "char", "word"),
    "model.encoder": ("transformer", "gru"),
    "model.decoder": ("transformer", "gru"),
    "model.attention": ("auto", "none", "bahdanau", "luong", "multihead"),
    "model.pooling": ("auto", "mean", "max", "final"),
    "model.positions": ("sinusoidal", "learned"),
    "train.optimizer": ("adam", "adamw"),
    "train.scheduler": ("inverse_sqrt", "plateau", "constant"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.early_stop_metric": ("bleu", "loss", "exact_match", "accuracy"),
    "task": ("translation", "autoencoder", "classification"),
    "model.bottleneck": ("plain", "variational", "binary"),
    "model.classifier_features": ("context", "context+max", "context+mean"),
    "autoencoder.kl_schedule": ("linear", "logistic", "constant"),
    "train.stage": ("joint", "encoder", "decoder"),
    "model.context_target_loss": ("ce", "mse"),
}


def validate(cfg: Config) -> None:
    """Check values that types alone cannot (choices, ranges, combinations)."""
    for key, choices in _CHOICES.items():
        *section, name = key.split(".")
        value = getattr(getattr(cfg, section[0]) if section else cfg, name)
        if value not in choices:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}; got '{value}'")
    m = cfg.model
    if m.decoder == "gru" and m.attention == "multihead":
        raise ConfigError("model.attention=multihead needs model.decoder=transformer (GRU: none, bahdanau, luong)")
    if m.decoder == "transformer" and m.attention in ("bahdanau", "luong"):
        raise ConfigError(f"model.attention={m.attention} needs model.decoder=gru (Transformer: multihead or none)")
    for key in ("d_model", "enc_layers", "dec_layers", "heads", "ffn_dim", "max_positions"):
        if getattr(m, key) < 1:
            raise ConfigError(f"config key 'model.{key}' must be at least 1")
    if m.d_model % m.heads and "transformer" in (m.encoder, m.decoder):
        raise ConfigError(f"model.d_model ({m.d_model}) must be divisible by model.heads ({m.heads})")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError("config key 'model.dropout' must be in [0, 1)")
    if m.share_embeddings and not cfg.tokenizer.joint:
        raise ConfigError("model.share_embeddings needs tokenizer.joint=true (one vocabulary for both sides)")
    if (cfg.tokenizer.src_model_type or cfg.tokenizer.src_vocab_size) and cfg.tokenizer.joint:
        raise ConfigError("tokenizer.src_model_type / src_vocab_size need tokenizer.joint=false")
    if m.context_target_dim < 0 or m.context_target_blocks < 1:
        raise ConfigError("model.context_target_dim must be >= 0 and model.context_target_blocks >= 1")
    if m.context_target_dim:
        if m.context_target_dim % m.context_target_blocks:
            raise ConfigError(
                f"model.context_target_dim ({m.context_target_dim}) must be a multiple of "
                f"model.context_target_blocks ({m.context_target_blocks})"
            )
        if m.attention != "none":
            raise ConfigError(
                "a context target (model.context_target_dim > 0) needs model.attention=none: with "
                "attention the decoder reads the encoder's states and bypasses the context vector"
            )
    if m.bottleneck != "plain" and m.context_target_dim:
        raise ConfigError(f"model.bottleneck={m.bottleneck} cannot be combined with a context target")
    if m.binary_noise < 0 or m.classifier_hidden < 0:
        raise ConfigError("model.binary_noise and model.classifier_hidden must be >= 0")
    a = cfg.autoencoder
    for key in ("drop", "mask", "shuffle", "word_dropout"):
        if not 0.0 <= getattr(a, key) < 1.0:
            raise ConfigError(f"config key 'autoencoder.{key}' is a probability: it must be in [0, 1)")
    if a.shuffle_distance < 1 or a.kl_anneal_steps < 1 or a.kl_weight < 0:
        raise ConfigError("autoencoder.shuffle_distance and kl_anneal_steps must be >= 1, kl_weight >= 0")
    if (cfg.train.early_stop_metric == "accuracy") != (cfg.task == "classification"):
        raise ConfigError(
            f"train.early_stop_metric={cfg.train.early_stop_metric} does not fit task={cfg.task} "
            "(accuracy is the classification metric; use auto)"
        )
    if cfg.task != "translation" and cfg.data.normalize != "none":
        raise ConfigError(
            f"data.normalize={cfg.data.normalize} is for task=translation (translate applies it "
            f"to the input); task={cfg.task} reads its text as it is"
        )
    if cfg.task != "translation" and not cfg.tokenizer.joint:
        raise ConfigError(f"task={cfg.task} has one language: it needs tokenizer.joint=true")
    if cfg.task == "classification" and m.context_target_dim:
        raise ConfigError("task=classification does not use a context target (model.context_target_dim)")
    t = cfg.train
    if t.stage != "joint":
        if cfg.task != "translation":
            raise ConfigError(f"train.stage={t.stage} is for task=translation (staged training)")
        if not m.context_target_dim:
            raise ConfigError(f"train.stage={t.stage} needs a context target: set model.context_target_dim")
        if not cfg.data.context_targets:
            raise ConfigError(f"train.stage={t.stage} needs data.context_targets (one vector per training line)")
        if t.early_stop_metric != "loss":
            raise ConfigError(f"train.stage={t.stage} validates on its own loss: set train.early_stop_metric=loss")
    for key in ("max_tokens", "accumulate", "max_bad_updates"):
        if getattr(t, key) < 1:
            raise ConfigError(f"config key 'train.{key}' must be at least 1")
    if t.lr <= 0:
        raise ConfigError("config key 'train.lr' must be positive")
    for key in ("keep_last", "save_every", "valid_every", "max_steps", "patience"):
        if getattr(t, key) < 0:
            raise ConfigError(f"config key 'train.{key}' must be >= 0")
    if len(t.betas) != 2:
        raise ConfigError("config key 'train.betas' must be a list of two numbers")
    validate_search(cfg.search)
    if cfg.tokenizer.vocab_size < 4 and cfg.tokenizer.model_type != "char":
        raise ConfigError("config key 'tokenizer.vocab_size' must be at least 4")


def _search_key(name: str) -> str:
    return f"config key 'search.{name}'"


def validate_search(search: SearchConfig, name: Callable[[str], str] = _search_key) -> None:
    """Check decoding settings: the rules for a config's ``search`` section and for the decoding
    flags that override it.

    ``name`` says how the message names a field: ``config key 'search.beam'`` by default, the
    flag (``--beam``) from the CLI.

    Raises:
        ConfigError: a size below 1, a negative length, or a number that is not finite.
    """
    for key in ("beam", "batch_tokens", "batch_rows"):
        value = getattr(search, key)
        if value < 1:
            hint = " (1 = greedy)" if key == "beam" else ""
            raise ConfigError(f"{name(key)} must be at least 1{hint}, got {value}")
    for key in ("length_penalty", "max_len_a"):
        value = getattr(search, key)
        if not math.isfinite(value):
            raise ConfigError(f"{name(key)} must be a finite number, got {value}")
    for key in ("max_len_a", "min_len"):
        value = getattr(search, key)
        if value < 0:
            raise ConfigError(f"{name(key)} must be >= 0, got {value}")
