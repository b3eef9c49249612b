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


def _reference_loss(logits, target, smoothing, pad_id):
    """The loss written with autograd's own ops: what the hand-written backward must match."""
    lprobs = F.log_softmax(logits.float(), dim=-1).flatten(0, 1)
    target = target.reshape(-1)
    keep = target.ne(pad_id)
    nll = -lprobs.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)
    loss = (1.0 - smoothing) * nll + smoothing * -lprobs.mean(dim=-1)
    return loss[keep].sum(), nll[keep].sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("nll_weight", [0.0, 0.5])
def test_loss_gradient_matches_autograd(smoothing, nll_weight):
    torch.manual_seed(1)
    target = torch.randint(1, 13, (3, 7))
    target[0, 5:] = 0
    target[2, 1:] = 0
    grads = []
    for fn in (label_smoothed_nll, _reference_loss):
        logits = (3 * torch.randn(3, 7, 13, generator=torch.Generator().manual_seed(2))).requires_grad_()
        loss, nll = fn(logits, target, smoothing, 0)[:2]
        (loss / 5 + nll_weight * nll).backward()
        grads.append(logits.grad)
        assert torch.all(logits.grad[target.eq(0)] == 0)  # padding positions get no gradient
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)
    logits16 = torch.randn(2, 3, 13, dtype=torch.bfloat16, requires_grad=True)  # bf16 autocast's logits
    label_smoothed_nll(logits16, target[:2, :3], smoothing, 0)[0].backward()
    assert logits16.grad.dtype == torch.bfloat16


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_inverse_sqrt_schedule():
    opt = _optimizer()
    s = LRSchedule(opt, "inverse_sqrt", lr=1e-3, warmup_steps=100)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # first update
    assert s.step_update(49) == pytest.approx(5e-4)
    assert s.step_update(99) == pytest.approx(1e-3)  # peak at the end of warm-up
    assert s.step_update(399) == pytest.approx(5e-4)  # sqrt(100 / 400)


def test_linear_schedule_decays_to_min_lr_and_scales_groups():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr_scale": 0.5}, {"params": [b]}], lr=1.0)
    s = LRSchedule(opt, "linear", lr=1e-3, warmup_steps=10, min_lr=0.0, total_steps=110)
    assert s.step_update(9) == pytest.approx(1e-3)  # peak at the end of warm-up
    assert s.step_update(59) == pytest.approx(5e-4)  # halfway down
    assert opt.param_groups[0]["lr"] == pytest.approx(2.5e-4) and opt.param_groups[1]["lr"] == pytest.approx(5e-4)
    assert s.step_update(109) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        LRSchedule(_optimizer(), "linear", lr=1e-3, warmup_steps=10)  # no total_steps


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
