"""Losses and schedules (checkpoints: test_reliability.py)."""

import pytest
import torch
import torch.nn.functional as F

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
