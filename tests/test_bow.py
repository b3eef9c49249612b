"""The bag-of-words decoder head (models/bow.py) and the straight-through binary code.

A tiny bag-of-words autoencoder trains in seconds on generated word sequences; the encoder
tools run on its checkpoint, the generating ones refuse it.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.errors import Seq2SeqError
from seq2seq.infer.autoencoder import Autoencoder
from seq2seq.models import Bottleneck, Encoded, build_model
from seq2seq.models.bow import BagOfWordsDecoder, bag_of_words_nll, start_from_unigram
from seq2seq.train.trainer import Trainer

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, rng.randint(2, 5))) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bow_data")
    (d / "train.txt").write_text("\n".join(sentences(2000, 1)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(sentences(100, 2)) + "\n", encoding="utf-8")
    pairs = [f"{s}\t{' '.join(reversed(s.split()))}" for s in sentences(1000, 3)]
    (d / "pairs.tsv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    return d


def overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data.format=text",
        f"data.path={corpus}",
        "data.train=train.txt",
        "data.valid=valid.txt",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "model.encoder=gru",
        "model.decoder=bow",
        "model.attention=none",
        "model.d_model=32",
        "model.context_dim=16",
        "model.enc_layers=1",
        "model.dropout=0.0",
        "model.bottleneck=binary",
        f"train.output_dir={out}",
        "train.precision=fp32",
        "train.max_tokens=512",
        "train.lr=1e-2",
        "train.scheduler=constant",
        "train.warmup_steps=10",
        "train.max_steps=150",
        "train.valid_every=150",
        "train.valid_bleu=false",
        "train.early_stop_metric=loss",
        "train.progress=false",
        "train.keep_last=0",
        "train.log_every=10",
        "train.label_smoothing=0.0",
        "autoencoder.drop=0.0",
        "autoencoder.mask=0.0",
        *extra,
    ]


# ------------------------------------------------------------------------------ the head
def test_bow_head_shapes_and_model_from_config():
    head = BagOfWordsDecoder(vocab_size=11, context_dim=5)
    enc = Encoded(states=torch.zeros(3, 1, 4), mask=torch.ones(3, 1, dtype=torch.bool), context=torch.randn(3, 5))
    assert head(torch.zeros(3, 7, dtype=torch.long), enc).shape == (3, 11)
    cfg = load_config(
        None,
        ["model.decoder=bow", "model.encoder=gru", "model.context_dim=6", "model.share_embeddings=false"],
        default_task="autoencoder",
    )
    model = build_model(cfg.model, 30, 40)
    assert isinstance(model.decoder, BagOfWordsDecoder) and model.decoder.output.weight.shape == (40, 6)
    src = torch.tensor([[5, 6, 7], [8, 9, 0]])
    assert model(src, src.ne(0), src).shape == (2, 40)


def test_bow_loss_equals_the_hand_computed_multiset_nll():
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # (B=2, V=4)
    target = torch.tensor([[2, 2, 1, 3, 0], [1, 3, 0, 0, 0]])  # 3 = end of sentence, 0 = padding: not counted
    loss, nll, n = bag_of_words_nll(logits, target, 0.0, skip=(0, 3))
    z0 = math.log(1 + math.e + math.e**2 + 1)  # row 0's log-partition
    z1 = math.log(math.e + 3)
    expected = -((2 - z0) + (2 - z0) + (1 - z0)) - (0 - z1)  # row 0: {2, 2, 1}; row 1: {1}
    assert n == 4
    assert nll.item() == pytest.approx(expected, rel=1e-6) and loss.item() == pytest.approx(expected, rel=1e-6)
    # smoothing mixes in the cross-entropy against the uniform distribution, per counted token
    smooth, _, _ = bag_of_words_nll(logits, target, 0.5, skip=(0, 3))
    uniform = 3 * -(torch.log_softmax(logits[0], -1).mean()) - torch.log_softmax(logits[1], -1).mean()
    assert smooth.item() == pytest.approx(0.5 * expected + 0.5 * uniform.item(), rel=1e-6)


def test_unigram_start_sets_the_bias_to_smoothed_log_frequencies():
    head = BagOfWordsDecoder(vocab_size=5, context_dim=2)
    start_from_unigram(head, np.array([7, 0, 3, 1]), skip=(0,))  # id 4 never seen
    p = head.output.bias.detach().exp().numpy()
    assert p.sum() == pytest.approx(1.0)
    assert p == pytest.approx(np.array([1, 1, 4, 2, 1]) / 9)  # add-one; the skipped id gets 1


def test_straight_through_codes_are_bits_with_the_sigmoid_gradient():
    torch.manual_seed(0)
    b = Bottleneck("binary", 8, estimator="straight_through").train()
    context = torch.randn(64, 8, requires_grad=True)
    z, kl = b(context)
    assert kl is None and set(z.unique().tolist()) <= {0.0, 1.0}
    z.sum().backward()
    probs = torch.sigmoid(b.code(context))
    manual = torch.autograd.grad(probs.sum(), context)[0]
    assert torch.allclose(context.grad, manual, atol=1e-6)
    b.eval()
    assert torch.equal(b(context)[0].bool(), b.bits(context))
    with pytest.raises(ValueError, match="estimator"):
        Bottleneck("binary", 8, estimator="gumbel")


# ---------------------------------------------------------------------- a tiny training run
@pytest.fixture(scope="module")
def trained_bow(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bow") / "run"
    cfg = load_config(None, overrides(corpus, out), default_task="autoencoder")
    Trainer(cfg).fit()
    return out


def test_tiny_bow_autoencoder_lowers_the_loss(trained_bow):
    log = [json.loads(line) for line in (trained_bow / "train_log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if e.get("event") == "train"]
    valid = [e["valid_loss"] for e in log if "valid_loss" in e]
    # 2-5 distinct words out of 12 per sentence: the unigram start is near log(12) = 2.5 nats
    assert losses[0] > 2.0 and valid[-1] < 0.85 * losses[0], (losses, valid)


def test_encode_hash_search_work_on_a_bow_checkpoint(trained_bow, corpus, tmp_path, capsys):
    ckpt = str(trained_bow / "best")
    valid = corpus / "valid.txt"
    codes = tmp_path / "codes.npy"
    assert main(["encode", "--checkpoint", ckpt, "-i", str(valid), "-o", str(codes), "--bits", "--quiet"]) == 0
    bits = np.load(codes)
    assert bits.shape == (100, 16) and set(np.unique(bits)) <= {0, 1}
    assert len({row.tobytes() for row in bits}) > 10  # the code is used, not collapsed
    index = tmp_path / "index.npz"
    assert main(["hash", "--checkpoint", ckpt, "-i", str(valid), "-o", str(index)]) == 0
    first = valid.read_text().splitlines()[0]
    (tmp_path / "q.txt").write_text(first + "\n")
    capsys.readouterr()
    assert (
        main(["search", "--checkpoint", ckpt, "--index", str(index), "-i", str(tmp_path / "q.txt"), "--top", "3"]) == 0
    )
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows and rows[0][1] == "0"  # the query itself is in the index at distance 0
    vectors = Autoencoder.from_checkpoint(ckpt, device="cpu").encode([first, "golf hotel"])
    assert vectors.shape == (2, 16) and np.isfinite(vectors).all()


def test_translate_and_reconstruct_refuse_a_bow_checkpoint(trained_bow, corpus, tmp_path, capsys):
    ckpt = str(trained_bow / "best")
    q = tmp_path / "q.txt"
    q.write_text("alpha bravo\n")
    capsys.readouterr()
    for command in ("translate", "reconstruct"):
        assert main([command, "--checkpoint", ckpt, "-i", str(q), "-o", str(tmp_path / "o.txt"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "bag-of-words decoder" in err and "cannot generate" in err and "Traceback" not in err, err
    with pytest.raises(Seq2SeqError, match="bag-of-words"):
        Autoencoder.from_checkpoint(ckpt, device="cpu").reconstruct(["alpha bravo"])


def test_bow_paraphrase_target_trains_as_translation(corpus, tmp_path):
    out = tmp_path / "para"
    args = overrides(corpus, out, "data.format=tsv", "data.train=pairs.tsv", "data.valid=", "train.max_steps=40")
    args += ["train.valid_every=0", "model.binary_estimator=straight_through", "tokenizer.joint=true"]
    cfg = load_config(None, args, default_task="translation")
    assert cfg.task == "translation"
    Trainer(cfg).fit()
    ae = Autoencoder.from_checkpoint(out / "last", device="cpu")
    assert ae.codes(["alpha bravo", "kilo lima"]).shape == (2, 16)
