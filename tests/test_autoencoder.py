"""Sequence autoencoders and classifiers: noise, bottlenecks, the tools, transfer.

A tiny autoencoder learns to reconstruct short generated word sequences in a few seconds;
the CLI commands run on it. A tiny classifier learns a word rule.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.data import Example, add_noise, local_shuffle, word_dropout
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.infer.autoencoder import Autoencoder
from seq2seq.infer.hashing import CodeIndex
from seq2seq.models import Bottleneck, Classifier
from seq2seq.train.objectives import choose_objective
from seq2seq.train.schedules import kl_weight
from seq2seq.train.trainer import Trainer

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def sentences(n: int, seed: int, lo: int = 2, hi: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ae_data")
    (d / "train.txt").write_text("\n".join(sentences(3000, 1)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(sentences(100, 2)) + "\n", encoding="utf-8")
    # classification: label 1 when "alpha" occurs
    for name, n, seed in (("train.tsv", 2000, 3), ("valid.tsv", 200, 4)):
        rows = [f"{s}\t{int('alpha' in s.split())}" for s in sentences(n, seed)]
        (d / name).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return d


def ae_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data.format=text",
        f"data.path={corpus}",
        "data.train=train.txt",
        "data.valid=valid.txt",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "model.encoder=gru",
        "model.decoder=gru",
        "model.d_model=64",
        "model.context_dim=48",
        "model.enc_layers=1",
        "model.dec_layers=1",
        "model.dropout=0.0",
        f"train.output_dir={out}",
        "train.precision=fp32",
        "train.max_tokens=1024",
        "train.lr=3e-3",
        "train.scheduler=constant",
        "train.warmup_steps=20",
        "train.max_steps=400",
        "train.valid_every=200",
        "train.progress=false",
        "train.keep_last=0",
        "train.log_every=50",
        "train.label_smoothing=0.0",
        "search.beam=1",
        "autoencoder.drop=0.0",
        "autoencoder.mask=0.0",
        *extra,
    ]


# ------------------------------------------------------------------------------------- noise
def test_noise_probabilities_and_clean_input_untouched():
    rng = np.random.default_rng(0)
    ids = list(range(10, 60))
    original = list(ids)
    dropped = masked = kept = 0
    for _ in range(400):
        noisy = add_noise(ids, rng, drop=0.2, mask=0.3, mask_id=1)
        dropped += len(ids) - len(noisy)
        masked += noisy.count(1)
        kept += len(noisy)
        assert [t for t in noisy if t != 1] == [t for t in ids if t in set(noisy)]  # order kept, no shuffle
    assert ids == original  # the clean sequence is never modified
    assert dropped / (400 * len(ids)) == pytest.approx(0.2, abs=0.02)
    assert masked / kept == pytest.approx(0.3, abs=0.02)


def test_local_shuffle_moves_tokens_at_most_k():
    rng = np.random.default_rng(1)
    ids = list(range(100))
    moved = 0
    for _ in range(50):
        out = local_shuffle(ids, 3, rng)
        assert sorted(out) == ids
        assert max(abs(pos - tok) for pos, tok in enumerate(out)) <= 3
        moved += out != ids
    assert moved == 50
    never = [add_noise(ids, rng, shuffle=0.0) for _ in range(20)]
    assert all(x == ids for x in never)
    sometimes = sum(add_noise(ids, rng, shuffle=0.5) != ids for _ in range(400))
    assert 150 < sometimes < 250  # each sentence shuffled with probability 0.5


def test_drop_keeps_at_least_one_token_and_empty_stays_empty():
    rng = np.random.default_rng(2)
    assert all(len(add_noise([5, 6], rng, drop=0.99)) == 1 for _ in range(50))
    assert add_noise([], rng, drop=0.5, mask=0.5, shuffle=0.5) == []


def test_word_dropout_spares_padding_and_bos():
    torch.manual_seed(0)
    tgt_in = torch.tensor([[2, 5, 6, 7, 0, 0]] * 200)
    out = word_dropout(tgt_in, 0.5, 1)
    assert out[:, 0].eq(2).all() and out[:, 4:].eq(0).all()
    assert out[:, 1:4].eq(1).float().mean().item() == pytest.approx(0.5, abs=0.06)
    assert word_dropout(tgt_in, 0.0, 1) is tgt_in


def test_trainer_noises_only_sources_and_only_for_autoencoders(corpus, tmp_path):
    cfg = load_config(
        None,
        ae_overrides(corpus, tmp_path / "r", "autoencoder.drop=0.3", "autoencoder.mask=0.3", "autoencoder.shuffle=0.5"),
        default_task="autoencoder",
    )
    examples = [Example(i, list(range(3, 13)), list(range(3, 13))) for i in range(50)]
    noisy = choose_objective(cfg).noise(examples, epoch=0, batch_number=0)
    assert all(e.tgt == list(range(3, 13)) and e.src == list(range(3, 13)) for e in examples)
    assert all(n.tgt == e.tgt for n, e in zip(noisy, examples))
    assert sum(n.src != e.src for n, e in zip(noisy, examples)) > 40
    again = choose_objective(cfg).noise(examples, epoch=0, batch_number=0)
    assert [n.src for n in noisy] == [a.src for a in again]  # reproducible (resume sees the same noise)
    cfg.task = "translation"
    assert choose_objective(cfg).noise(examples, 0, 0) is examples


# ------------------------------------------------------------------------------- bottlenecks
def test_kl_annealing_schedules():
    assert kl_weight(0, "linear", 100) == 0.0
    assert kl_weight(50, "linear", 100) == pytest.approx(0.5)
    assert kl_weight(500, "linear", 100, 0.8) == pytest.approx(0.8)
    assert kl_weight(0, "logistic", 1000) < 0.01
    assert kl_weight(500, "logistic", 1000) == pytest.approx(0.5)
    assert kl_weight(1000, "logistic", 1000) > 0.99
    assert kl_weight(0, "constant", 1000) == 1.0
    values = [kl_weight(s, "logistic", 1000) for s in range(0, 2000, 50)]
    assert values == sorted(values)


def test_variational_kl_matches_closed_form_and_eval_uses_the_mean():
    torch.manual_seed(0)
    b = Bottleneck("variational", 6)
    context = torch.randn(4, 6)
    b.train()
    z1, kl = b(context)
    z2, _ = b(context)
    assert not torch.equal(z1, z2)  # sampled
    mu, logvar = b.mu(context), b.logvar(context)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl, expected, atol=1e-5)
    b.eval()
    z, _ = b(context)
    assert torch.allclose(z, mu)
    with torch.no_grad():  # KL is 0 exactly when q = N(0, I)
        for layer in (b.mu, b.logvar):
            layer.weight.zero_()
            layer.bias.zero_()
    assert b(context)[1].abs().max().item() == 0.0


def test_binary_codes_are_bits_at_inference_and_noisy_in_training():
    torch.manual_seed(0)
    b = Bottleneck("binary", 16, noise=1.0)
    context = torch.randn(8, 16)
    b.train()
    z, kl = b(context)
    assert kl is None and ((z > 0) & (z < 1)).all()
    b.eval()
    z, _ = b(context)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(z.bool(), b.bits(context))


# --------------------------------------------------------------------- tiny autoencoder run
@pytest.fixture(scope="module")
def trained_ae(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ae") / "run"
    args = ["pretrain", str(corpus / "ae.yaml")]
    (corpus / "ae.yaml").write_text("train:\n  seed: 1\n", encoding="utf-8")
    for o in ae_overrides(corpus, out):
        args += ["--set", o]
    assert main(args) == 0
    return out


def test_tiny_autoencoder_learns_to_reconstruct(trained_ae, corpus):
    valid = (corpus / "valid.txt").read_text(encoding="utf-8").splitlines()
    ae = Autoencoder.from_checkpoint(trained_ae / "best", device="cpu")
    out = ae.reconstruct(valid)
    exact = sum(o == v for o, v in zip(out, valid)) / len(valid)
    assert exact >= 0.8, list(zip(valid, out))[:5]
    cfg = json.loads((trained_ae / "best" / "config.json").read_text())["config"]
    assert cfg["task"] == "autoencoder" and cfg["model"]["attention"] == "none"


def test_attention_in_an_autoencoder_warns(corpus, tmp_path, caplog):
    cfg = load_config(
        None,
        ae_overrides(
            corpus,
            tmp_path / "att",
            "model.attention=bahdanau",
            "train.max_steps=2",
            "train.valid_every=0",
            "data.valid=",
        ),
        default_task="autoencoder",
    )
    with caplog.at_level("WARNING", logger="seq2seq.train"):
        Trainer(cfg).fit()
    assert "context vector need not learn anything" in caplog.text


def test_cli_tools_on_the_autoencoder(trained_ae, corpus, tmp_path, capsys):
    ckpt = str(trained_ae / "best")
    queries = tmp_path / "q.txt"
    queries.write_text("alpha bravo charlie\n\ngolf hotel\n", encoding="utf-8")
    out = tmp_path / "rec.txt"
    assert main(["reconstruct", "--checkpoint", ckpt, "-i", str(queries), "-o", str(out), "--quiet"]) == 0
    assert out.read_text().splitlines() == ["alpha bravo charlie", "", "golf hotel"]
    vec = tmp_path / "v.npy"
    with pytest.warns(UserWarning, match="1 empty input line"):
        assert main(["encode", "--checkpoint", ckpt, "-i", str(queries), "-o", str(vec), "--quiet"]) == 0
    v = np.load(vec)
    assert v.shape == (3, 48) and v.dtype == np.float32 and not v[1].any() and v[0].any()
    scores = tmp_path / "s.tsv"
    assert (
        main(
            [
                "score",
                "--checkpoint",
                ckpt,
                "-i",
                str(queries),
                "-o",
                str(scores),
                "--threshold",
                "1.0",
                "--header",
                "--quiet",
            ]
        )
        == 0
    )
    rows = [line.split("\t") for line in scores.read_text().splitlines()]
    assert rows[0] == ["per_token", "total", "tokens", "flag"] and len(rows) == 4  # --header: 1 + 3 lines
    assert rows[1][2] == "4" and float(rows[1][0]) < 1.0 and rows[1][3] == "0" and rows[2][0] == "nan"
    # hash needs a binary code layer; --real indexes vectors for cosine search
    assert main(["hash", "--checkpoint", ckpt, "-i", str(corpus / "valid.txt"), "-o", str(tmp_path / "i.npz")]) == 2
    assert "binary code layer" in capsys.readouterr().err
    index = tmp_path / "real.npz"
    assert (
        main(["hash", "--checkpoint", ckpt, "-i", str(corpus / "valid.txt"), "-o", str(index), "--real", "--quiet"])
        == 0
    )
    hits = tmp_path / "hits.tsv"
    first = (corpus / "valid.txt").read_text().splitlines()[0]
    (tmp_path / "one.txt").write_text(first + "\n")
    assert (
        main(
            [
                "search",
                "--checkpoint",
                ckpt,
                "--index",
                str(index),
                "-i",
                str(tmp_path / "one.txt"),
                "--top",
                "3",
                "-o",
                str(hits),
            ]
        )
        == 0
    )
    top = hits.read_text().splitlines()[0].split("\t")
    assert top[0] == "1" and float(top[1]) == pytest.approx(1.0, abs=1e-4) and top[3] == first
    # sample needs a variational model
    assert main(["sample", "--checkpoint", ckpt, "-n", "2"]) == 2
    assert "variational" in capsys.readouterr().err
    # a translation-only command on a classifier, etc.: clear errors, not tracebacks
    assert main(["classify", "--checkpoint", ckpt, "-i", str(queries)]) == 2
    assert "classifier head" in capsys.readouterr().err


def test_score_separates_in_domain_from_noise(trained_ae, corpus):
    ae = Autoencoder.from_checkpoint(trained_ae / "best", device="cpu")
    normal = (corpus / "valid.txt").read_text().splitlines()[:30]
    odd = ["zulu yankee xray", "qqq www eee rrr", "the cat sat on the mat"]
    s = ae.score(normal + odd)[:, 2]
    assert s[len(normal) :].min() > np.median(s[: len(normal)])
    assert np.array_equal(ae.score(normal)[:, 2], ae.score(normal)[:, 2])  # no noise at inference


# ------------------------------------------------------------------ variational and binary runs
def test_variational_autoencoder_reports_kl_and_samples(corpus, tmp_path, capsys):
    out = tmp_path / "vae"
    cfg = load_config(
        None,
        ae_overrides(
            corpus,
            out,
            "model.bottleneck=variational",
            "autoencoder.kl_schedule=linear",
            "autoencoder.kl_anneal_steps=100",
            "autoencoder.word_dropout=0.2",
            "train.max_steps=150",
            "train.valid_every=150",
        ),
        default_task="autoencoder",
    )
    Trainer(cfg).fit()
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert all("kl" in r and "kl_weight" in r for r in train)
    assert train[0]["kl_weight"] == pytest.approx(0.5) and train[-1]["kl_weight"] == 1.0
    assert train[-1]["nll"] < train[-1]["loss"]  # loss = reconstruction + weight * KL
    valid = [r for r in records if r["event"] == "valid"]
    assert valid[-1]["valid_kl"] > 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out / "best"), "-n", "3", "--seed", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(out / "best"),
                "--interpolate",
                "alpha bravo",
                "kilo lima golf",
                "--steps",
                "4",
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_binary_autoencoder_hash_and_search(corpus, trained_ae, tmp_path, capsys):
    out = tmp_path / "bin"
    cfg = load_config(
        None,
        ae_overrides(
            corpus, out, "model.bottleneck=binary", "model.context_dim=16", "train.max_steps=60", "train.valid_every=60"
        ),
        default_task="autoencoder",
    )
    Trainer(cfg).fit()
    capsys.readouterr()
    ckpt = str(out / "best")
    codes = tmp_path / "codes.npy"
    assert main(["encode", "--checkpoint", ckpt, "-i", str(corpus / "valid.txt"), "-o", str(codes), "--bits"]) == 0
    bits = np.load(codes)
    assert bits.shape == (100, 16) and set(np.unique(bits)) <= {0, 1}
    index = tmp_path / "bits.npz"
    assert main(["hash", "--checkpoint", ckpt, "-i", str(corpus / "valid.txt"), "-o", str(index)]) == 0
    first = (corpus / "valid.txt").read_text().splitlines()[0]
    (tmp_path / "q.txt").write_text(first + "\n")
    assert (
        main(["search", "--checkpoint", ckpt, "--index", str(index), "-i", str(tmp_path / "q.txt"), "--radius", "0"])
        == 0
    )
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r[1] == "0" for r in rows) and "1" in [r[2] for r in rows]
    # an index is refused with another checkpoint's codes
    assert (
        main(["search", "--checkpoint", str(trained_ae / "best"), "--index", str(index), "-i", str(tmp_path / "q.txt")])
        == 2
    )
    assert "another checkpoint" in capsys.readouterr().err


def test_hash_index_round_trip_and_lookup_matches_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.random((500, 20)) < 0.5
    lines = [f"line {i} ü" for i in range(500)]
    index = CodeIndex.from_codes(codes, lines, "abc")
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = CodeIndex.load(path)
    assert loaded.lines == lines and loaded.bits == 20 and loaded.model_hash == "abc"
    for q in range(5):
        query = codes[q]
        dist = (codes != query).sum(axis=1)
        for radius in (0, 1, 3):
            expected = sorted((int(i), int(dist[i])) for i in np.flatnonzero(dist <= radius))
            assert loaded.lookup(query, radius) == sorted(expected, key=lambda x: (x[1], x[0]))
        top = loaded.rank(query, 10)
        assert [d for _, d in top] == sorted(dist)[:10] and top[0] == (q, 0)
        # ties at the 10th distance are cut by line number too (not wherever argpartition left them)
        assert top == sorted(((int(i), int(dist[i])) for i in range(500)), key=lambda x: (x[1], x[0]))[:10]
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    real = CodeIndex.from_vectors(vectors, lines[:50])
    real.save(tmp_path / "real.npz")
    best = CodeIndex.load(tmp_path / "real.npz").nearest(vectors[7] * 3, 2)
    assert best[0][0] == 7 and best[0][1] == pytest.approx(1.0, abs=1e-5)
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(Exception, match="not a seq2seq index"):
        CodeIndex.load(tmp_path / "bad.npz")


# ---------------------------------------------------------------------------- transfer
def cls_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data.format=tsv",
        "data.skip_header=true",
        f"data.path={corpus}",
        "data.train=train.tsv",
        "data.valid=valid.tsv",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "model.encoder=gru",
        "model.d_model=64",
        "model.context_dim=48",
        "model.enc_layers=1",
        "model.dropout=0.0",
        f"train.output_dir={out}",
        "train.precision=fp32",
        "train.max_tokens=1024",
        "train.lr=3e-3",
        "train.scheduler=constant",
        "train.warmup_steps=10",
        "train.max_steps=120",
        "train.valid_every=60",
        "train.progress=false",
        "train.keep_last=0",
        "train.label_smoothing=0.0",
        *extra,
    ]


def test_classifier_from_scratch_learns_and_classifies(corpus, tmp_path, capsys):
    out = tmp_path / "cls"
    args = ["classify-train", str(corpus / "ae.yaml")]
    (corpus / "ae.yaml").write_text("train:\n  seed: 1\n", encoding="utf-8")
    for o in cls_overrides(corpus, out):
        args += ["--set", o]
    assert main(args) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert max(r.get("valid_accuracy", 0) for r in records) >= 90
    (tmp_path / "q.txt").write_text("alpha golf\ngolf hotel\n")
    assert main(["classify", "--checkpoint", str(out / "best"), "-i", str(tmp_path / "q.txt"), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == ["1", "0"]
    assert (
        main(
            [
                "encode",
                "--checkpoint",
                str(out / "best"),
                "-i",
                str(tmp_path / "q.txt"),
                "-o",
                str(tmp_path / "c.npy"),
                "--quiet",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "c.npy").shape == (2, 48)
    assert main(["translate", "--checkpoint", str(out / "best"), "-i", str(tmp_path / "q.txt")]) == 2
    assert "no decoder" in capsys.readouterr().err


def test_frozen_pretrained_encoder_in_classifier_is_unchanged(trained_ae, corpus, tmp_path):
    out = tmp_path / "frozen"
    cfg = load_config(
        None,
        cls_overrides(corpus, out, f"train.init_encoder={trained_ae / 'best'}", "train.freeze=[encoder]"),
        default_task="classification",
    )
    Trainer(cfg).fit()
    ae = load_checkpoint(trained_ae / "best")[0].encoder.state_dict()
    clf = load_checkpoint(out / "last")[0].encoder.state_dict()
    assert clf.keys() == ae.keys() and all(torch.equal(clf[k], ae[k]) for k in clf)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start"


def test_fine_tuned_encoder_starts_from_pretrained_weights(trained_ae, corpus, tmp_path):
    cfg = load_config(
        None,
        cls_overrides(
            corpus,
            tmp_path / "ft",
            f"train.init_encoder={trained_ae / 'best'}",
            "train.max_steps=1",
            "train.valid_every=0",
            "train.lr=1e-9",
        ),
        default_task="classification",
    )
    Trainer(cfg).fit()
    model, *_ = load_checkpoint(tmp_path / "ft" / "last")
    ae_model, *_ = load_checkpoint(trained_ae / "best")
    for (name, p), (_, q) in zip(model.encoder.named_parameters(), ae_model.encoder.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_autoencoder_encoder_loads_into_a_translation_model(trained_ae, corpus, tmp_path):
    # a "translation" task over the same words (reverse the sentence) starting from the AE's encoder
    rows = [f"{s}\t{' '.join(reversed(s.split()))}" for s in sentences(300, 9)]
    (tmp_path / "rev.tsv").write_text("\n".join(rows) + "\n")
    base = ae_overrides(
        corpus,
        tmp_path / "mt",
        f"train.init_encoder={trained_ae / 'best'}",
        "train.max_steps=2",
        "train.valid_every=0",
        "train.lr=1e-9",
        "data.format=tsv",
        "data.path=" + str(tmp_path),
        "data.train=rev.tsv",
        "data.valid=",
        "model.attention=bahdanau",
    )
    Trainer(load_config(None, base)).fit()
    mt, *_ = load_checkpoint(tmp_path / "mt" / "last")
    ae_model, *_ = load_checkpoint(trained_ae / "best")
    assert mt.decoder.attention is not None
    for p, q in zip(mt.encoder.parameters(), ae_model.encoder.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    # a different SentencePiece model is refused, not silently mismatched
    other = tmp_path / "other.model"
    from seq2seq.data import SpmTokenizer

    SpmTokenizer.train(["x y z w"] * 50 + sentences(50, 3), vocab_size=24, model_type="word").save(other)
    cfg = load_config(None, [*base, f"tokenizer.model={other}", f"train.output_dir={tmp_path / 'mt2'}"])
    with pytest.raises(ConfigError, match="SentencePiece model differs"):
        Trainer(cfg).fit()
    # an encoder with another bottleneck does not fit
    cfg = load_config(None, [*base, "model.bottleneck=binary", f"train.output_dir={tmp_path / 'mt3'}"])
    with pytest.raises(CheckpointError, match="bottleneck"):
        Trainer(cfg).fit()


def test_config_rules_for_the_new_tasks(corpus, tmp_path):
    with pytest.raises(ConfigError, match="probability"):
        load_config(None, ["autoencoder.drop=1.5"])
    with pytest.raises(ConfigError, match="task"):
        load_config(None, ["task=summarise"])
    with pytest.raises(ConfigError, match="accuracy"):
        load_config(None, ["train.early_stop_metric=accuracy"])
    cfg = load_config(None, [], default_task="classification")
    assert cfg.train.early_stop_metric == "accuracy"
    assert load_config(None, [], default_task="autoencoder").model.attention == "none"
    assert load_config(None, ["task=autoencoder", "model.decoder=gru"]).model.attention == "none"
    assert math.isfinite(kl_weight(10**9, "logistic", 10))


def test_monolingual_and_labelled_loading(tmp_path):
    import gzip

    from seq2seq.config import DataConfig
    from seq2seq.data import load_labelled, load_monolingual
    from seq2seq.errors import DataError

    with gzip.open(tmp_path / "mono.txt.gz", "wt", encoding="utf-8") as f:
        f.write("one two\r\n\nthree\n")
    cfg = DataConfig(format="text", path=str(tmp_path), src_lang="en")
    text = load_monolingual(cfg, "mono.txt.gz")
    assert text.src == text.tgt == ["one two", "", "three"]
    (tmp_path / "train.en").write_text("a b\nc\n")
    assert load_monolingual(cfg, "train").src == ["a b", "c"]  # PREFIX.SRC_LANG
    (tmp_path / "x.tsv").write_text("sentence\tlabel\nfine film\tpos\nbad\tneg\n")
    tsv = DataConfig(format="tsv", path=str(tmp_path), skip_header=True)
    assert load_monolingual(tsv, "x.tsv").src == ["fine film", "bad"]
    labelled = load_labelled(tsv, "x.tsv")
    assert labelled.src == ["fine film", "bad"] and labelled.tgt == ["pos", "neg"]
    (tmp_path / "bad.tsv").write_text("one\ttwo\tthree\n")
    with pytest.raises(DataError, match=r"bad.tsv:1: expected 'sentence<TAB>label'.*header"):
        load_labelled(DataConfig(format="tsv", path=str(tmp_path)), "bad.tsv")
    (tmp_path / "nolabel.tsv").write_text("good\t\n")
    with pytest.raises(DataError, match="nolabel.tsv:1: the label"):
        load_labelled(DataConfig(format="tsv", path=str(tmp_path)), "nolabel.tsv")
    (tmp_path / "c.jsonl").write_text('{"text": "hello there"}\n{"text": "bye"}\n')
    js = DataConfig(format="jsonl", path=str(tmp_path), src_lang="text")
    assert load_monolingual(js, "c.jsonl").src == ["hello there", "bye"]
    with pytest.raises(DataError, match="not found"):
        load_monolingual(cfg, "missing.txt")


@pytest.mark.parametrize("bottleneck", ["plain", "variational"])
def test_transformer_autoencoder_trains_and_reconstructs_shapes(corpus, tmp_path, bottleneck):
    out = tmp_path / "tr"
    cfg = load_config(
        None,
        ae_overrides(
            corpus,
            out,
            "model.encoder=transformer",
            "model.decoder=transformer",
            "model.heads=4",
            "model.ffn_dim=64",
            f"model.bottleneck={bottleneck}",
            "train.max_steps=4",
            "train.valid_every=4",
            "autoencoder.drop=0.2",
        ),
        default_task="autoencoder",
    )
    assert cfg.model.attention == "none"
    Trainer(cfg).fit()
    ae = Autoencoder.from_checkpoint(out / "best", device="cpu")
    assert len(ae.reconstruct(["alpha bravo", "", "golf"])) == 3
    assert ae.encode(["alpha bravo"]).shape == (1, 48)


def test_resume_accepts_a_checkpoint_written_before_new_model_fields(corpus, tmp_path):
    """A run saved by an older version (without fields added since) still resumes."""
    import hashlib

    out = tmp_path / "old"
    base = ae_overrides(corpus, out, "train.max_steps=2", "train.valid_every=2")
    Trainer(load_config(None, base, default_task="autoencoder")).fit()
    last = out / "last"
    meta = json.loads((last / "config.json").read_text())
    for key in ("classifier_features", "bottleneck", "binary_noise"):
        del meta["config"]["model"][key]
    del meta["config"]["autoencoder"]
    (last / "config.json").write_text(json.dumps(meta))
    manifest = json.loads((last / "manifest.json").read_text())
    data = (last / "config.json").read_bytes()
    manifest["config.json"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (last / "manifest.json").write_text(json.dumps(manifest))
    result = Trainer(load_config(None, [*base, "train.max_steps=4"], default_task="autoencoder"), resume=True).fit()
    assert result.steps == 4


def test_encoder_lr_scale_and_linear_schedule_in_a_fine_tuned_classifier(trained_ae, corpus, tmp_path):
    from seq2seq.train.build import build_optimizer, build_schedule

    extra = ("train.encoder_lr_scale=0.25", "train.scheduler=linear", "train.max_steps=4", "train.warmup_steps=1")
    cfg = load_config(
        None,
        cls_overrides(corpus, tmp_path / "ft", f"train.init_encoder={trained_ae / 'best'}", *extra),
        default_task="classification",
    )
    Trainer(cfg).fit()  # trains end to end with both options
    model, *_ = load_checkpoint(tmp_path / "ft" / "last")
    optimizer = build_optimizer(cfg, model, torch.device("cpu"))
    encoder = {id(p) for m in model.part("encoder") for p in m.parameters()}
    scaled, plain = optimizer.param_groups
    assert {id(p) for p in scaled["params"]} == encoder and not encoder & {id(p) for p in plain["params"]}
    schedule = build_schedule(cfg, optimizer)
    schedule.step_update(2)  # update 3 of 4: a third of the way down from the peak
    assert plain["lr"] == pytest.approx(cfg.train.lr / 3 + cfg.train.min_lr * 2 / 3)
    assert scaled["lr"] == pytest.approx(0.25 * plain["lr"])


def test_adversarial_fine_tuning_of_a_pretrained_encoder_trains_end_to_end(trained_ae, corpus, tmp_path):
    out = tmp_path / "adv"
    extra = ("train.adversarial_eps=0.05", "train.max_steps=4", "train.valid_every=4")
    cfg = load_config(
        None,
        cls_overrides(corpus, out, f"train.init_encoder={trained_ae / 'best'}", *extra),
        default_task="classification",
    )
    result = Trainer(cfg).fit()
    assert result.steps == 4
    model, *_ = load_checkpoint(out / "last")
    assert isinstance(model, Classifier)
