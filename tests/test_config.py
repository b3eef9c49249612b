"""Configs: YAML onto dataclasses, overrides, and errors that name the key."""

import pytest

from seq2seq.config import (
    Config,
    SearchConfig,
    config_from_dict,
    load_config,
    parse_override,
    validate_search,
)
from seq2seq.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_yaml_values(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  encoder: gru\n  d_model: 64\ntrain:\n  lr: 1.0e-3\n"))
    assert cfg.model.encoder == "gru" and cfg.model.d_model == 64
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.model.decoder == "transformer"  # untouched default


def test_overrides_win_and_are_typed(tmp_path):
    cfg = load_config(
        write(tmp_path, "train:\n  lr: 1.0e-3\n"),
        ["train.lr=5e-4", "model.enc_layers=2", "train.freeze=[encoder]", "train.valid_bleu=false"],
    )
    assert cfg.train.lr == pytest.approx(5e-4)
    assert cfg.model.enc_layers == 2
    assert cfg.train.freeze == ["encoder"]
    assert cfg.train.valid_bleu is False


def test_int_to_float_is_accepted():
    assert config_from_dict({"train": {"lr": 1}}).train.lr == 1.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"train": {"lrr": 1e-3}}, "train.lrr"),
        ({"modle": {}}, "modle"),
        ({"model": {"d_model": "big"}}, "model.d_model"),
        ({"model": {"encoder": "lstm"}}, "model.encoder"),
        ({"train": {"valid_bleu": "yes"}}, "train.valid_bleu"),
        ({"model": {"decoder": "gru", "attention": "multihead"}}, "multihead"),
        ({"model": {"d_model": 100, "heads": 3}}, "divisible"),
        ({"tokenizer": {"joint": False}, "model": {"share_embeddings": True}}, "share_embeddings"),
        ({"train": "fast"}, "train"),
    ],
)
def test_errors_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_unknown_key_from_override_is_named(tmp_path):
    with pytest.raises(ConfigError, match="train.learning_rate"):
        load_config(None, ["train.learning_rate=1"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("train.lr")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "model: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_round_trip_through_dict():
    cfg = load_config(None, ["model.encoder=gru", "train.betas=[0.9, 0.99]"])
    assert config_from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg, Config)


@pytest.mark.parametrize(
    "search, message",
    [
        ({"beam": 0}, "'search.beam' must be at least 1"),
        ({"batch_tokens": -1}, "'search.batch_tokens' must be at least 1"),
        ({"min_len": -1}, "'search.min_len' must be >= 0"),
        ({"max_len_a": -0.5}, "'search.max_len_a' must be >= 0"),
    ],
)
def test_search_rules(search, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"search": search})


def test_validate_search_names_fields_as_told():
    """The CLI checks its decoding flags with the same rules, naming the flag."""
    bad = SearchConfig(length_penalty=float("nan"))
    with pytest.raises(ConfigError, match="'search.length_penalty' must be a finite number"):
        validate_search(bad)
    with pytest.raises(ConfigError, match="^--length-penalty must be a finite number, got nan$"):
        validate_search(bad, lambda name: "--" + name.replace("_", "-"))
    validate_search(SearchConfig())
