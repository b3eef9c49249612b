"""The rules that types alone cannot say: choices, ranges and combinations of config values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from seq2seq.config.image_rules import validate_image_output
from seq2seq.config.sections import Config, DataConfig, SearchConfig
from seq2seq.errors import ConfigError

_CHOICES = {
    "data.format": ("text", "tsv", "jsonl", "disk", "hub", "images", "digits"),
    "data.normalize": ("none", "numerals"),
    "tokenizer.model_type": ("bpe", "unigram", "char", "word"),
    "tokenizer.src_model_type": ("", "bpe", "unigram", "char", "word"),
    "model.encoder": ("transformer", "gru", "cnn", "mlp"),
    "model.item_sequence": ("none", "gru", "transformer"),
    "model.decoder": ("transformer", "gru", "bow", "image"),
    "model.attention": ("auto", "none", "bahdanau", "luong", "multihead"),
    "model.pooling": ("auto", "mean", "max", "final"),
    "model.positions": ("sinusoidal", "learned"),
    "train.optimizer": ("adam", "adamw"),
    "train.scheduler": ("inverse_sqrt", "plateau", "constant", "linear"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.early_stop_metric": ("bleu", "loss", "exact_match", "accuracy"),
    "task": ("translation", "autoencoder", "classification"),
    "model.bottleneck": ("plain", "variational", "binary"),
    "model.binary_estimator": ("noise", "straight_through"),
    "model.classifier_features": ("context", "context+max", "context+mean"),
    "autoencoder.kl_schedule": ("linear", "logistic", "constant"),
    "train.stage": ("joint", "encoder", "decoder"),
    "model.context_target_loss": ("ce", "mse"),
}


@dataclass(frozen=True)
class Corpus:
    """One training corpus of ``data.train``: a split (what a single ``data.train`` names) and its
    weight, the expected number of times each of its pairs is trained on per epoch."""

    split: str
    weight: float = 1.0


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)", re.IGNORECASE)
_WEIGHT_RULE = (
    "a number >= 0 (each pair is trained on WEIGHT times an epoch on average: 1 once, 3 up-samples it, "
    "0.5 takes a different half each epoch, 0 leaves the corpus out)"
)
_CORPUS_FORMS = '"SPLIT", "SPLIT:WEIGHT" or {split: SPLIT, weight: WEIGHT}'


def _split_weight(entry: str) -> tuple[str, object]:
    """``"indomain:3"`` -> ("indomain", 3.0); a split whose text after its last colon is not a
    number (``train[:10%]``, ``C:\\data\\x``) is the whole string with weight 1."""
    head, colon, tail = entry.rpartition(":")
    if colon and head and _NUMBER.fullmatch(tail.strip()):
        return head, float(tail)
    return entry, 1.0


def train_corpora(data: DataConfig) -> list[Corpus]:
    """The training corpora ``data.train`` names, in order, weight-0 ones included.

    A string is one corpus of weight 1, taken as it is (colons included). A list holds
    ``"SPLIT"``, ``"SPLIT:WEIGHT"`` (when the text after the last colon is a number) or
    ``{split: SPLIT, weight: WEIGHT}`` entries; each SPLIT means what a single ``data.train``
    means for ``data.format``.

    Raises:
        ConfigError: naming the entry (``data.train[1]``) and what to write instead: an entry
            of another shape, an empty split, a weight that is negative or not a number, a
            split listed twice, an empty list or one whose weights are all 0.
    """
    train = data.train
    if isinstance(train, str):
        return [Corpus(train)]
    if not train:
        raise ConfigError(f"config key 'data.train' is an empty list: name at least one corpus ({_CORPUS_FORMS})")
    corpora = []
    for i, entry in enumerate(train):
        key = f"config key 'data.train[{i}]'"
        if isinstance(entry, dict):
            if set(entry) - {"split", "weight"} or "split" not in entry:
                keys = ", ".join(map(str, entry)) or "none"
                raise ConfigError(
                    f"{key}: a corpus mapping has the keys split and weight (weight: 1 if left out); got {keys}"
                )
            split, weight = entry["split"], entry.get("weight", 1.0)
        elif isinstance(entry, str):
            split, weight = _split_weight(entry)
        else:
            raise ConfigError(f"{key} must be {_CORPUS_FORMS}; got {entry!r}")
        if isinstance(split, (int, float)) and not isinstance(split, bool):
            split = str(split)
        if not isinstance(split, str) or not split.strip():
            raise ConfigError(
                f"{key}: the split must be a non-empty string (a file, prefix or split name); got {split!r}"
            )
        if isinstance(weight, str) and _NUMBER.fullmatch(weight.strip()):
            weight = float(weight)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
            raise ConfigError(f"{key}: the weight of corpus '{split}' must be {_WEIGHT_RULE}; got {weight!r}")
        corpora.append(Corpus(split, float(weight)))
    splits = [c.split for c in corpora]
    twice = next((s for s in splits if splits.count(s) > 1), None)
    if twice is not None:
        raise ConfigError(
            f"config key 'data.train' names the corpus '{twice}' twice; list it once, with the weights added"
        )
    if not any(c.weight > 0 for c in corpora):
        raise ConfigError("config key 'data.train': every corpus has weight 0, so there is nothing to train on")
    return corpora


def several_corpora(data: DataConfig) -> bool:
    """Whether ``data.train`` is a list (even of one corpus): the run samples its corpora by weight."""
    return not isinstance(data.train, str)


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
    if m.d_model % m.heads and "transformer" in (m.encoder, m.decoder, m.item_sequence):
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
    validate_items(cfg)
    t = cfg.train
    if t.stage != "joint":
        if cfg.task != "translation":
            raise ConfigError(f"train.stage={t.stage} is for task=translation (staged training)")
        if not m.context_target_dim:
            raise ConfigError(f"train.stage={t.stage} needs a context target: set model.context_target_dim")
        if not cfg.data.context_targets and not labels_given(cfg):
            raise ConfigError(f"train.stage={t.stage} needs data.context_targets (one vector per training line)")
        if t.early_stop_metric != "loss":
            raise ConfigError(f"train.stage={t.stage} validates on its own loss: set train.early_stop_metric=loss")
    train_corpora(cfg.data)
    if several_corpora(cfg.data) and t.stage != "joint":
        raise ConfigError(
            f"train.stage={t.stage} reads data.context_targets, one vector per line of one training split: "
            "data.train must name a single split (a string), not a list of corpora"
        )
    for key in ("max_tokens", "accumulate", "max_bad_updates"):
        if getattr(t, key) < 1:
            raise ConfigError(f"config key 'train.{key}' must be at least 1")
    if t.lr <= 0:
        raise ConfigError("config key 'train.lr' must be positive")
    for key in ("keep_last", "save_every", "valid_every", "max_steps", "patience"):
        if getattr(t, key) < 0:
            raise ConfigError(f"config key 'train.{key}' must be >= 0")
    if t.scheduler == "linear" and t.max_steps <= t.warmup_steps:
        raise ConfigError("train.scheduler=linear decays to train.max_steps: set it above train.warmup_steps")
    if t.encoder_lr_scale <= 0:
        raise ConfigError("config key 'train.encoder_lr_scale' must be positive")
    if t.adversarial_eps < 0:
        raise ConfigError("config key 'train.adversarial_eps' must be >= 0 (0: off)")
    if t.adversarial_eps > 0:
        if cfg.task != "classification" or cfg.model.encoder not in ("gru", "transformer"):
            raise ConfigError(
                "train.adversarial_eps perturbs word embeddings: it is for classifiers with a gru or "
                f"transformer encoder (task '{cfg.task}', encoder '{cfg.model.encoder}')"
            )
        if "encoder" in t.freeze:
            raise ConfigError("train.adversarial_eps needs gradients through the encoder: it cannot be frozen")
    if len(t.betas) != 2:
        raise ConfigError("config key 'train.betas' must be a list of two numbers")
    validate_search(cfg.search)
    if cfg.tokenizer.vocab_size < 4 and cfg.tokenizer.model_type != "char":
        raise ConfigError("config key 'tokenizer.vocab_size' must be at least 4")


ITEM_ENCODERS = ("cnn", "mlp")
ITEM_FORMATS = ("images", "digits")


def labels_given(cfg: Config) -> bool:
    """Whether the data gives each item's class, which staged training through per-item classes
    (``model.item_classes``) fits: the generated digits do."""
    return cfg.data.format == "digits" and cfg.model.item_classes > 0


def validate_items(cfg: Config) -> None:
    """The rules of image and vector inputs (``model.encoder`` cnn / mlp, ``data.format`` images /
    digits, ``model.item_*``, ``data.digits``); see docs/images.md."""
    m, d = cfg.model, cfg.data
    validate_image_output(cfg)  # model.decoder=image: image autoencoders (image_rules.py)
    reads_items, gives_items = m.encoder in ITEM_ENCODERS, d.format in ITEM_FORMATS
    if gives_items and not reads_items:
        raise ConfigError(
            f"data.format={d.format} gives the encoder images or vectors: set model.encoder to cnn (images) "
            f"or mlp (images or vectors), not {m.encoder}"
        )
    if reads_items and not gives_items:
        raise ConfigError(
            f"model.encoder={m.encoder} reads images or vectors: set data.format to images (.npy arrays or "
            f"image files) or digits (generated digit images), not {d.format}"
        )
    if not reads_items:
        if m.item_classes:
            raise ConfigError("model.item_classes is for image and vector encoders (model.encoder cnn or mlp)")
        return
    if cfg.task not in ("translation", "autoencoder"):
        raise ConfigError(
            f"model.encoder={m.encoder} is for task=translation (images or vectors -> text) or autoencoder "
            f"(-> images), not {cfg.task}"
        )
    if d.normalize != "none":
        raise ConfigError(f"data.normalize={d.normalize} normalizes text sources; images have none: set it to none")
    if any(n < 1 for n in m.item_shape) or len(m.item_shape) > 3:
        raise ConfigError(
            f"config key 'model.item_shape' must be [H, W] or [C, H, W] (images) or [D] (vectors) of positive "
            f"sizes, or empty (the data's); got {m.item_shape}"
        )
    if m.encoder == "cnn" and len(m.item_shape) == 1:
        raise ConfigError(f"model.encoder=cnn reads images ([H, W] or [C, H, W]); for vectors {m.item_shape} use mlp")
    if d.format == "digits" and m.item_shape and list(m.item_shape) != [8, 8]:
        raise ConfigError("data.format=digits gives 8x8 images: set model.item_shape to [8, 8] or leave it empty")
    if m.item_classes < 0:
        raise ConfigError("config key 'model.item_classes' must be >= 0")
    if m.item_classes:
        want = m.context_target_blocks * (m.item_classes + 1)
        if m.context_target_dim != want:
            raise ConfigError(
                f"model.item_classes={m.item_classes} with {m.context_target_blocks} block(s) makes an interface of "
                f"{want} values: set model.context_target_dim to {want} (or 0: the same)"
            )
        if m.context_target_loss != "ce":
            raise ConfigError("model.item_classes: per-item classes are fitted with context_target_loss=ce")
    if d.format == "digits":
        g = d.digits
        if g.lang not in ("en", "ko"):
            raise ConfigError(f"config key 'data.digits.lang' must be one of en, ko; got '{g.lang}'")
        if not 1 <= g.min_digits <= g.max_digits:
            raise ConfigError(
                f"data.digits.min_digits ({g.min_digits}) and max_digits ({g.max_digits}) must be 1 <= min <= max"
            )
        if m.item_classes and m.context_target_blocks < g.max_digits:
            raise ConfigError(
                f"model.context_target_blocks ({m.context_target_blocks}) must be at least data.digits.max_digits "
                f"({g.max_digits}): one block per image"
            )
        for key in ("train_size", "valid_size", "test_size"):
            if getattr(g, key) < 1:
                raise ConfigError(f"config key 'data.digits.{key}' must be at least 1")
        if len(g.fractions) != 3 or min(g.fractions) <= 0 or abs(sum(g.fractions) - 1) > 1e-6:
            raise ConfigError(
                f"config key 'data.digits.fractions' must be three positive numbers summing to 1 (the train, "
                f"valid and test shares of each digit's images); got {g.fractions}"
            )
        if several_corpora(d):
            raise ConfigError("data.format=digits: data.train names one split (train), not a list of corpora")


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
