"""The checkpoint package's own API: the directory fsync, and files hashed once per process."""

from __future__ import annotations

import pytest

import seq2seq.checkpoint as checkpoint
import seq2seq.checkpoint.load as loading
from seq2seq.checkpoint import (
    fsync_directory,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    verify_checkpoint,
    weights_hash,
)
from seq2seq.config import load_config
from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair
from seq2seq.errors import CheckpointError
from seq2seq.models import build_model


@pytest.fixture
def saved(tmp_path):
    cfg = load_config(
        None, ["model.d_model=16", "model.ffn_dim=32", "model.enc_layers=1", "model.dec_layers=1", "model.heads=2"]
    )
    tok = TokenizerPair(SpmTokenizer.train(["a b c", "d e f", "a c e", "b d f"] * 10, vocab_size=12, model_type="word"))
    model = build_model(cfg.model, tok.src.vocab_size, tok.tgt.vocab_size)
    return save_checkpoint(tmp_path / "ckpt", model, cfg, tok)


def count_hashes(monkeypatch) -> list[str]:
    hashed: list[str] = []
    real = loading.sha256_file

    def counting(path):
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(loading, "sha256_file", counting)
    return hashed


def test_fsync_directory_is_best_effort(tmp_path):
    fsync_directory(tmp_path)
    fsync_directory(str(tmp_path))
    fsync_directory(tmp_path / "missing")  # cannot be opened: nothing happens


def test_a_checkpoint_read_twice_is_hashed_once_unless_a_file_changes(saved, monkeypatch):
    hashed = count_hashes(monkeypatch)
    monkeypatch.setattr(loading, "_HASHED", {})
    path = resolve_checkpoint(saved)
    meta = verify_checkpoint(path)
    once = sorted(hashed)
    assert "model.safetensors" in once and len(once) == len(set(once))
    model, cfg, _, loaded_meta = load_checkpoint(path)
    assert weights_hash(saved) and sorted(hashed) == once  # config, weights, hash: each file hashed once
    assert loaded_meta == meta and cfg == checkpoint.checkpoint_config(path, meta)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # same size, one bit flipped, written in place
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        load_checkpoint(path)
    assert sorted(hashed).count("model.safetensors") == 2


def test_save_weights_is_wrapped_through_the_package(saved, monkeypatch):
    """A save calls seq2seq.checkpoint.save_weights, so wrapping that one name reaches every save."""
    calls = []
    real = checkpoint.save_weights
    monkeypatch.setattr(checkpoint, "save_weights", lambda model, path: (calls.append(path), real(model, path)))
    model, cfg, tok, _ = load_checkpoint(saved)
    save_checkpoint(saved, model, cfg, tok)
    assert len(calls) == 1 and calls[0].endswith("model.safetensors")
