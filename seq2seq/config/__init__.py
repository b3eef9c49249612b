"""Typed configuration: YAML files mapped onto dataclasses, overridable from the command line.

A config names its ``task`` and has six sections (``data``, ``tokenizer``, ``model``, ``train``,
``search``, ``autoencoder``); every field has a default, so a YAML file only names what it
changes. Unknown keys and values of the wrong type are errors that name the key::

    cfg = load_config("recipes/translation/transformer.yaml", ["train.lr=5e-4"])

The package has three parts: :mod:`~seq2seq.config.sections` (the dataclasses),
:mod:`~seq2seq.config.loading` (YAML, overrides, type checks) and
:mod:`~seq2seq.config.validation` (choices, ranges, combinations).
"""

from seq2seq.config.loading import apply_overrides, config_from_dict, load_config, parse_override, read_yaml
from seq2seq.config.sections import (
    AutoencoderConfig,
    Config,
    DataConfig,
    DigitsConfig,
    ModelConfig,
    SearchConfig,
    TokenizerConfig,
    TrainConfig,
)
from seq2seq.config.validation import Corpus, several_corpora, train_corpora, validate, validate_search

__all__ = [
    "AutoencoderConfig",
    "Config",
    "Corpus",
    "DataConfig",
    "DigitsConfig",
    "ModelConfig",
    "SearchConfig",
    "TokenizerConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "parse_override",
    "read_yaml",
    "several_corpora",
    "train_corpora",
    "validate",
    "validate_search",
]
