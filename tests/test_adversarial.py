"""Adversarial training on word embeddings (seq2seq/train/adversarial.py) and its use in the
classification objective."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.config import load_config
from seq2seq.data.batching import Batch
from seq2seq.errors import ConfigError
from seq2seq.train.adversarial import adversarial_step, perturb_embeddings
from seq2seq.train.objectives import Classification


def test_the_step_has_the_asked_norm_per_sentence_and_leaves_padding_alone():
    torch.manual_seed(0)
    grad, embedded = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    step = adversarial_step(grad, embedded, mask, 0.1)
    assert step[~mask].abs().max() == 0  # padding is not moved
    for row in range(3):
        real = mask[row]
        expected = 0.1 * embedded[row][real].norm()
        assert step[row].norm() == pytest.approx(float(expected), rel=1e-5)
        # along the gradient of the real positions
        cosine = F.cosine_similarity(step[row][real].flatten(), grad[row][real].flatten(), dim=0)
        assert cosine == pytest.approx(1.0, abs=1e-5)
    zero = adversarial_step(torch.zeros(1, 2, 4), torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool), 0.1)
    assert torch.equal(zero, torch.zeros(1, 2, 4))  # no gradient: no step, no NaN


def test_the_step_raises_the_loss_and_the_hook_goes_away():
    torch.manual_seed(0)
    embedding, head = nn.Embedding(10, 8), nn.Linear(8, 2)
    ids, mask, labels = torch.randint(0, 10, (4, 6)), torch.ones(4, 6, dtype=torch.bool), torch.tensor([0, 1, 0, 1])

    def loss() -> torch.Tensor:
        return F.cross_entropy(head(embedding(ids).mean(1)), labels, reduction="sum")

    captured: list[torch.Tensor] = []
    with perturb_embeddings(embedding, capture=captured):
        clean = loss()
    (grad,) = torch.autograd.grad(clean, captured[0])
    step = adversarial_step(grad, captured[0], mask, 0.05)
    with perturb_embeddings(embedding, add=step):
        pushed = loss()
    assert pushed > clean
    assert torch.equal(loss(), clean)  # both hooks removed: the plain embedding again
    assert not embedding._forward_hooks


def _classifier_config(*extra: str, encoder: str = "gru"):
    base = [f"model.encoder={encoder}", "model.d_model=16", "model.context_dim=16", "model.dropout=0.0", *extra]
    if encoder == "transformer":
        base += ["model.heads=2", "model.ffn_dim=32"]
    return load_config(None, base, default_task="classification")


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_the_objective_adds_the_adversarial_loss_in_training_only(encoder):
    torch.manual_seed(0)
    plain = Classification(_classifier_config(encoder=encoder))
    adversarial = Classification(_classifier_config("train.adversarial_eps=0.1", encoder=encoder))
    plain.labels = adversarial.labels = ["0", "1"]
    model = plain.build_model(_Tokenizers())
    src = torch.randint(4, 20, (6, 7))
    mask = torch.ones(6, 7, dtype=torch.bool)
    mask[:2, 5:] = False
    src[~mask] = 0
    labels = torch.tensor([[0], [1], [0], [1], [1], [0]])
    batch = Batch(src, mask, labels, labels, torch.ones(6, 1, dtype=torch.bool), list(range(6)), 6)
    model.train()
    base = plain.loss(model, batch, 0.0)
    pushed = adversarial.loss(model, batch, 0.0)
    assert pushed.nll.item() == pytest.approx(base.nll.item())  # reported: the clean batch's
    assert pushed.loss.item() > 2 * base.loss.item()  # clean + a larger adversarial term
    pushed.loss.backward()  # one graph with both terms, into the encoder
    assert model.encoder.embedding.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():  # validation: the clean loss alone
        valid = float(adversarial.loss(model, batch, 0.0).loss)
        assert valid == pytest.approx(float(plain.loss(model, batch, 0.0).loss))


class _Tokenizers:
    """What build_model reads of a TokenizerPair."""

    class src:  # noqa: N801 - stands for the attribute
        vocab_size = 20


def test_config_rules():
    with pytest.raises(ConfigError, match="adversarial_eps.*>= 0"):
        _classifier_config("train.adversarial_eps=-1")
    with pytest.raises(ConfigError, match="for classifiers"):
        load_config(None, ["train.adversarial_eps=0.1"], default_task="autoencoder")
    with pytest.raises(ConfigError, match="cannot be frozen"):
        _classifier_config("train.adversarial_eps=0.1", "train.freeze=[encoder]")
