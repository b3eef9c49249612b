"""Losses, schedules and checkpoints."""

import json
import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from seq2seq.checkpoint import load_checkpoint, load_trainer_state, save_checkpoint
from seq2seq.config import load_config
from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair
from seq2seq.errors import CheckpointError
from seq2seq.models import build_model
from seq2seq.train.losses import label_smoothed_nll
from seq2seq.train.schedules import LRSchedule


def test_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    target = torch.tensor([[4, 5, 6, 3, 0], [7, 3, 0, 0, 0]])
    loss, nll, n = label_smoothed_nll(logits, target, 0.1, pad_id=0)
    assert n == 6
    changed = logits.clone()
    changed[0, 4] += 100.0  # padding positions
    changed[1, 2:] -= 50.0
    loss2, nll2, _ = label_smoothed_nll(changed, target, 0.1, pad_id=0)
    assert torch.equal(loss, loss2) and torch.equal(nll, nll2)


def test_loss_without_smoothing_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 9)
    target = torch.randint(1, 9, (3, 4))
    target[0, 3] = 0
    loss, nll, n = label_smoothed_nll(logits, target, 0.0, pad_id=0)
    expected = F.cross_entropy(logits.reshape(-1, 9), target.reshape(-1), ignore_index=0, reduction="sum")
    assert torch.allclose(loss, expected, atol=1e-5) and torch.allclose(nll, expected, atol=1e-5)
    smoothed, _, _ = label_smoothed_nll(logits, target, 0.1, pad_id=0)
    assert not torch.allclose(smoothed, loss)


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_inverse_sqrt_schedule():
    opt = _optimizer()
    s = LRSchedule(opt, "inverse_sqrt", lr=1e-3, warmup_steps=100)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # first update
    assert s.step_update(49) == pytest.approx(5e-4)
    assert s.step_update(99) == pytest.approx(1e-3)  # peak at the end of warm-up
    assert s.step_update(399) == pytest.approx(5e-4)  # sqrt(100 / 400)


def test_plateau_schedule_reduces_after_patience():
    opt = _optimizer()
    s = LRSchedule(opt, "plateau", lr=1e-3, warmup_steps=0, factor=0.5, patience=1)
    s.step_validation(10.0, higher_is_better=True, step=10)
    s.step_validation(9.0, True, 20)
    assert s.lr == pytest.approx(1e-3)
    s.step_validation(9.0, True, 30)
    assert s.lr == pytest.approx(5e-4)
    restored = LRSchedule(_optimizer(), "plateau", lr=1e-3)
    restored.load_state_dict(s.state_dict())
    assert restored.lr == pytest.approx(5e-4) and restored.plateau_scale == pytest.approx(0.5)


@pytest.fixture
def tiny_checkpoint_parts():
    cfg = load_config(None, ["model.d_model=32", "model.ffn_dim=64", "model.enc_layers=1",
                             "model.dec_layers=1", "model.heads=2"])
    texts = ["ein hund läuft", "a dog runs", "zwei katzen", "two cats"] * 20
    tok = TokenizerPair(SpmTokenizer.train(texts, vocab_size=40, model_type="word"))
    model = build_model(cfg.model, tok.src.vocab_size, tok.tgt.vocab_size)
    return cfg, tok, model


def test_checkpoint_round_trip(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    state = {"step": 7, "optimizer": {"lr": torch.tensor(0.5)}}
    save_checkpoint(tmp_path / "last", model, cfg, tok, state)
    loaded, cfg2, tok2, meta = load_checkpoint(tmp_path / "last")
    assert cfg2 == cfg and tok2.src.fingerprint == tok.src.fingerprint
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert load_trainer_state(tmp_path / "last")["step"] == 7
    # overwrite in place: old one is replaced atomically, no leftovers
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 8})
    assert load_trainer_state(tmp_path / "last")["step"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_crash_between_renames_falls_back_to_old(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 1})
    os.replace(tmp_path / "last", tmp_path / "last.old")  # what a crash mid-replace leaves
    assert load_trainer_state(tmp_path / "last")["step"] == 1


def test_truncated_and_missing_files_are_named(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    ckpt = save_checkpoint(tmp_path / "best", model, cfg, tok)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")


def test_incompatible_format_is_refused(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    ckpt = save_checkpoint(tmp_path / "best", model, cfg, tok)
    meta = json.loads((ckpt / "config.json").read_text())
    meta["format"] = 999
    text = json.dumps(meta)
    (ckpt / "config.json").write_text(text)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["config.json"]["bytes"] = len(text.encode())
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="format 999"):
        load_checkpoint(ckpt)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_refused(tmp_path, tiny_checkpoint_parts, monkeypatch):
    cfg, tok, model = tiny_checkpoint_parts
    monkeypatch.chdir(tmp_path)
    ckpt = save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 1})
    payload = pickle.dumps({"step": _Exploit()})
    torch_file = ckpt / "trainer_state.pt"
    torch.save({"x": 1}, torch_file)  # a zip container, then swap in the hostile pickle
    torch_file.write_bytes(payload)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["trainer_state.pt"]["bytes"] = len(payload)
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="refused"):
        load_trainer_state(ckpt)
    assert not (tmp_path / "PWNED").exists()
