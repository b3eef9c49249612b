"""Issue 18, "Many corpora": ``data.train`` as a list of weighted corpora. The config shapes and
their errors, the weighted sampler (the observed mix of corpora in the drawn batches against the
weights, up-sampling, down-sampling, weight 0), one store per corpus read as one, the start-up
log, exact resume mid-epoch and two DDP processes."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.config import Corpus, config_from_dict, load_config, train_corpora
from seq2seq.data.samplers import TokenBudgetBatchSampler, WeightedBatchSampler
from seq2seq.data.store import CorpusMix
from seq2seq.errors import ConfigError
from seq2seq.train import build
from seq2seq.train.objectives import choose_objective
from seq2seq.train.prepare import prepare
from seq2seq.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
GENERAL, IN_DOMAIN = "abcde", "vwxyz"  # the letters of each corpus: a pair tells where it came from


def write_corpus(path: Path, n: int, letters: str, seed: int, long_every: int = 0) -> None:
    """``n`` pairs of 2-6 letters (reversed on the target side); every ``long_every``-th is 12 long."""
    if path.exists():  # rewriting would change its identity, so its store's key
        return
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        size = 12 if long_every and i % long_every == 0 else rng.randint(2, 6)
        rows.append([rng.choice(letters) for _ in range(size)])
    path.write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))


def data(tmp_path: Path, train: object, *more: str) -> list[str]:
    write_corpus(tmp_path / "general.tsv", 300, GENERAL, 1)
    write_corpus(tmp_path / "indomain.tsv", 40, IN_DOMAIN, 2)
    write_corpus(tmp_path / "other.tsv", 50, "klmno", 3)
    write_corpus(tmp_path / "valid.tsv", 12, GENERAL + IN_DOMAIN, 4)
    return [
        "data.format=tsv",
        f"data.path={tmp_path}",
        f"data.train={json.dumps(train)}",
        "data.valid=valid.tsv",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "train.progress=false",
        "train.threads=1",
        "train.max_tokens=40",
        *more,
    ]


# ------------------------------------------------------------------------------------ config
def test_config_shapes():
    def corpora(train: object) -> list[Corpus]:
        return train_corpora(config_from_dict({"data": {"train": train}}).data)

    assert corpora("train") == [Corpus("train", 1.0)]
    assert corpora("train[:10%]") == [Corpus("train[:10%]", 1.0)]  # a string is one split, colons and all
    assert corpora(2019) == [Corpus("2019", 1.0)]
    assert corpora(["general", "indomain:3", "web:0.5", "hub[:5]", "old:0"]) == [
        Corpus("general", 1.0),
        Corpus("indomain", 3.0),
        Corpus("web", 0.5),
        Corpus("hub[:5]", 1.0),
        Corpus("old", 0.0),
    ]
    assert corpora([{"split": "general"}, {"split": "indomain", "weight": 2.5}]) == [
        Corpus("general", 1.0),
        Corpus("indomain", 2.5),
    ]
    # the CLI: --set data.train=[general, indomain:3]; the saved config reads back the same
    cfg = load_config(None, ["data.train=[general, indomain:3]"])
    assert train_corpora(cfg.data) == [Corpus("general"), Corpus("indomain", 3.0)]
    assert config_from_dict(json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize(
    ("train", "extra", "message"),
    [
        (["general", "indomain:-2"], {}, r"data.train\[1\]'.*weight of corpus 'indomain' must be a number >= 0"),
        ([{"split": "a", "weight": "lots"}], {}, r"data.train\[0\]'.*must be a number >= 0.*got 'lots'"),
        ([{"split": "a", "weight": float("nan")}], {}, r"data.train\[0\]'.*>= 0"),
        ([{"split": "a", "weight": True}], {}, r"data.train\[0\]'.*>= 0"),
        ([{"path": "a", "weight": 2}], {}, r"data.train\[0\]'.*keys split and weight.*got path, weight"),
        (["a", ["b"]], {}, r"data.train\[1\]' must be \"SPLIT\", \"SPLIT:WEIGHT\" or \{split"),
        ([{"split": ""}], {}, r"data.train\[0\]'.*non-empty string"),
        ([], {}, r"'data.train' is an empty list"),
        (["a:0", "b:0"], {}, r"every corpus has weight 0"),
        (["a", "b:2", "a:3"], {}, r"names the corpus 'a' twice; list it once, with the weights added"),
        ({"split": "a"}, {}, r"'data.train' must be a string or a list"),
        (
            ["a", "b"],
            {
                "train": {"stage": "encoder", "early_stop_metric": "loss"},
                "model": {"context_target_dim": 4, "attention": "none"},
            },
            r"train.stage=encoder reads data.context_targets.*data.train must name a single split",
        ),
    ],
)
def test_config_errors_name_the_entry_and_the_fix(train, extra, message):
    values = {"data": {"train": train, "context_targets": "t.npy"}, **extra}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_config_error_from_the_command_line_names_the_override():
    with pytest.raises(ConfigError, match=r"--set data.train=\[a, b:-1\]: .*data.train\[1\]"):
        load_config(None, ["data.train=[a, b:-1]"])


# ----------------------------------------------------------------------------------- sampler
def lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 30, n), rng.integers(1, 30, n)


def drawn(sampler: TokenBudgetBatchSampler, epoch: int) -> np.ndarray:
    return np.concatenate([np.asarray(b) for b in sampler.ordered(epoch)])


def test_integer_weights_up_sample_exactly():
    src, tgt = lengths(1100, 0)
    sampler = WeightedBatchSampler(src, tgt, [1000, 100], [1, 5], max_tokens=200, seed=3)
    for epoch in range(3):
        counts = np.bincount(drawn(sampler, epoch), minlength=1100)
        assert (counts[:1000] == 1).all() and (counts[1000:] == 5).all()
        for batch in sampler.ordered(epoch):
            widths = np.maximum(src[batch], tgt[batch] + 1)
            assert len(batch) == 1 or len(batch) * widths.max() <= 200
    assert sampler.expected() == [1000.0, 500.0]


def test_fractional_weight_draws_a_fresh_share_each_epoch():
    src, tgt = lengths(1200, 1)
    sampler = WeightedBatchSampler(src, tgt, [1000, 200], [0.5, 1.3], max_tokens=150, seed=1)
    seen = np.zeros(1200, dtype=int)
    halves = []
    for epoch in range(20):
        counts = np.bincount(drawn(sampler, epoch), minlength=1200)
        assert counts[:1000].max() == 1 and counts[:1000].sum() == 500  # half, without repeats
        assert set(counts[1000:].tolist()) <= {1, 2} and counts[1000:].sum() == 260
        halves.append(frozenset(np.flatnonzero(counts[:1000]).tolist()))
        seen += counts
    assert len(set(halves)) == 20  # another half each epoch
    assert seen[:1000].min() >= 1  # so every pair gets its turn
    assert abs(seen[:1000].mean() - 10) < 1e-9 and abs(seen[1000:].mean() - 26) < 1e-9


def test_stochastic_rounding_keeps_the_mean_of_a_tiny_weight():
    src, tgt = lengths(110, 2)
    sampler = WeightedBatchSampler(src, tgt, [100, 10], [1, 0.05], max_tokens=100, seed=0)
    small = [int((drawn(sampler, e) >= 100).sum()) for e in range(400)]
    assert set(small) == {0, 1}  # 0.5 pairs an epoch: 0 or 1, never always 0
    assert abs(np.mean(small) - 0.5) < 0.1


def test_weight_zero_and_weights_one():
    src, tgt = lengths(300, 3)
    off = WeightedBatchSampler(src, tgt, [100, 200], [0, 1], max_tokens=120, seed=4)
    for epoch in range(3):
        assert sorted(drawn(off, epoch).tolist()) == list(range(100, 300))
    # all weights 1: the corpora concatenated, batch for batch what one corpus would give
    ones = WeightedBatchSampler(src, tgt, [100, 200], [1, 1], max_tokens=120, seed=4)
    plain = TokenBudgetBatchSampler(src, tgt, max_tokens=120, seed=4)
    for epoch in range(3):
        assert ones.batches(epoch) == plain.batches(epoch)


def test_batches_depend_only_on_seed_and_epoch():
    src, tgt = lengths(500, 5)
    a = WeightedBatchSampler(src, tgt, [400, 100], [1, 2.5], max_tokens=100, seed=9)
    b = WeightedBatchSampler(src, tgt, [400, 100], [1, 2.5], max_tokens=100, seed=9)
    assert a.batches(1) == b.batches(1) and a.batches(0) == b.ordered(0)[:]
    assert a.batches(0) != a.batches(1)
    with pytest.raises(ValueError, match="do not fit"):
        WeightedBatchSampler(src, tgt, [400, 50], [1, 1], max_tokens=100)


# ------------------------------------------------------------------- stores and the real data
def prepared(tmp_path: Path, train: object, *more: str):
    cfg = load_config(None, data(tmp_path, train, *more))
    objective = choose_objective(cfg)
    source = build.train_source(cfg, objective)
    tokenizers = build.build_tokenizers(cfg, objective, source)
    store = build.train_store(cfg, objective, source, tokenizers)
    objective.prepare(store)
    examples, stats = objective.select(store)
    return cfg, objective, tokenizers, store, examples, stats


def test_drawn_batches_mix_the_corpora_by_weight(tmp_path, caplog):
    caplog.set_level(logging.INFO, "seq2seq")
    cfg, objective, tokenizers, mix, examples, _ = prepared(
        tmp_path, ["general.tsv", "indomain.tsv:3.5", "other.tsv:0"], "data.max_src_tokens=10"
    )
    assert isinstance(mix, CorpusMix) and mix.splits == ["general.tsv", "indomain.tsv"]
    assert "training corpus other.tsv: weight 0, left out" in caplog.text
    assert not list((tmp_path / ".seq2seq-cache").glob("other.tsv-*"))  # never tokenized
    sampler = build.train_sampler(cfg, examples, world=1)
    assert "training corpus 2/2 indomain.tsv: 40 of 40 pairs kept, weight 3.5: 140 samples an epoch (31.8%)" in (
        caplog.text
    )
    assert "training corpus 1/2 general.tsv: 300 of 300 pairs kept" in caplog.text
    # every pair is read from its own corpus: its letters say which
    per_epoch = []
    for epoch in range(6):
        letters = Counter()
        for batch in sampler.ordered(epoch):
            for example in examples.examples(batch):
                text = tokenizers.src.decode(example.src)
                kind = {c for c in text if c.isalpha()}
                assert kind <= set(GENERAL) or kind <= set(IN_DOMAIN), text
                letters["in" if kind <= set(IN_DOMAIN) else "general"] += 1
        assert letters["general"] == 300
        per_epoch.append(letters["in"])
    assert set(per_epoch) <= {140}  # 3.5 x 40: 3 copies of each and a fresh half
    share = sum(per_epoch) / (sum(per_epoch) + 6 * 300)
    assert abs(share - 140 / 440) < 0.01


def test_each_corpus_keeps_its_own_store_and_the_limits_filter_each(tmp_path, caplog):
    caplog.set_level(logging.INFO, "seq2seq")
    write_corpus(tmp_path / "long.tsv", 60, GENERAL, 5, long_every=3)
    cfg, objective, tokenizers, mix, examples, stats = prepared(
        tmp_path, ["long.tsv:2", "indomain.tsv"], "data.max_src_tokens=10"
    )
    assert stats.total == 100 and stats.too_long == 20 and stats.kept == 80
    assert mix.corpus_sizes(examples.rows).tolist() == [40, 40]
    build.train_sampler(cfg, examples, world=1)
    assert "training corpus 1/2 long.tsv: 40 of 60 pairs kept, weight 2: 80 samples an epoch (66.7%)" in caplog.text
    # the in-domain corpus's store is the one a run on it alone (same tokenizer) finds
    alone = load_config(None, data(tmp_path, "indomain.tsv"))
    single = build.train_store(alone, choose_objective(alone), build.train_source(alone, objective), tokenizers)
    assert single.path == mix.stores[1].path
    assert mix.src_lengths[60:].tolist() == single.src_lengths.tolist()
    assert np.shares_memory(mix.stores[0].src_lengths, mix.src_lengths)  # views, not copies
    # seq2seq prepare: a second run finds every store built
    first = prepare(cfg)
    assert prepare(cfg).built_seconds == 0.0 and first.store.size == 100


def test_prepare_prints_a_line_per_corpus(tmp_path, capsys):
    """``seq2seq prepare``: each corpus's store, built or reused, its pairs and tokens and what the
    length limits keep of it."""
    from seq2seq.cli import main

    write_corpus(tmp_path / "long.tsv", 60, GENERAL, 5, long_every=3)
    flags = [f"--set={o}" for o in data(tmp_path, ["long.tsv:2", "indomain.tsv", "other.tsv:0"])]
    flags += ["--set=data.max_src_tokens=10", f"--set=data.cache_dir={tmp_path / 'cache'}"]
    (tmp_path / "c.yaml").write_text("task: translation\n")
    # indomain.tsv's store is there already (a run on it alone with the same SentencePiece models)
    cfg = load_config(None, [f.split("=", 1)[1] for f in flags])
    objective = choose_objective(cfg)
    tokenizers = build.build_tokenizers(cfg, objective, build.train_source(cfg, objective))
    alone = build.train_source(load_config(None, [*data(tmp_path, "indomain.tsv")]), objective)
    build.train_store(cfg, objective, alone, tokenizers)
    assert main(["prepare", str(tmp_path / "c.yaml"), *flags]) == 0
    lines = capsys.readouterr().out.splitlines()
    long, indomain = (next(line for line in lines if line.startswith(f"training corpus {k}/2 ")) for k in (1, 2))
    stores = sorted(p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("spm-"))
    assert long.startswith(f"training corpus 1/2 long.tsv (weight 2): token store {stores[1]} (built in ")
    assert "60 pairs" in long and "kept 40 of 60 pairs (dropped 20 too long)" in long
    tokens = sum(json.loads((stores[1] / "meta.json").read_text())[side]["tokens"] for side in ("src", "tgt"))
    assert f"60 pairs, {tokens:,} tokens;" in long
    assert indomain.startswith(f"training corpus 2/2 indomain.tsv (weight 1): token store {stores[0]} (reused): 40 ")
    assert indomain.endswith("kept 40 of 40 pairs")
    assert "training data, with the config's length limits: kept 80 of 100 pairs (dropped 20 too long)" in lines
    assert f"validation {tmp_path / 'valid.tsv'}: 12 pairs (read at each run, not stored)" in lines
    assert not any("other.tsv" in line for line in lines[:-1])
    # again: every store reused
    assert main(["prepare", str(tmp_path / "c.yaml"), *flags]) == 0
    again = [line for line in capsys.readouterr().out.splitlines() if line.startswith("training corpus")]
    assert len(again) == 2 and all("(reused)" in line for line in again)


def test_only_the_first_rank_logs_the_corpora(tmp_path, caplog):
    """Under DDP every rank builds the sampler; the per-corpus lines come from rank 0 alone
    (``echo``), and the other ranks open the stores without a line."""
    caplog.set_level(logging.INFO, "seq2seq")
    cfg, objective, tokenizers, mix, examples, _ = prepared(tmp_path, ["general.tsv", "indomain.tsv:2", "other.tsv:0"])
    caplog.clear()
    source = build.train_source(cfg, objective, echo=False)
    build.train_store(cfg, objective, source, tokenizers, build=False, echo=False)
    build.train_sampler(cfg, examples, world=2, echo=False)
    assert "training corpus" not in caplog.text and "token store" not in caplog.text
    build.train_sampler(cfg, examples, world=2)
    assert caplog.text.count("training corpus") == 2


def test_unknown_corpus_is_named(tmp_path):
    from seq2seq.errors import DataError

    cfg = load_config(None, data(tmp_path, ["general.tsv", "nowhere.tsv:2"]))
    with pytest.raises(DataError, match=r"data.train\[1\] \('nowhere.tsv'\): file not found: .*nowhere.tsv"):
        build.train_source(cfg, choose_objective(cfg))


def test_classifier_corpora_with_different_labels(tmp_path):
    rng = random.Random(0)
    (tmp_path / "a.tsv").write_text("".join(f"{rng.choice('abc')} {rng.choice('abc')}\tx\n" for _ in range(30)))
    (tmp_path / "b.tsv").write_text("".join(f"{rng.choice('abc')} c\t{rng.choice('yz')}\n" for _ in range(30)))
    cfg, objective, _, mix, examples, _ = prepared(tmp_path, ["a.tsv", "b.tsv:2"], "task=classification")
    assert mix.labels == ["x", "y", "z"] and objective.labels == ["x", "y", "z"]
    got = examples.examples(np.arange(len(examples)))
    assert {e.tgt[0] for e in got[:30]} == {0} and {e.tgt[0] for e in got[30:]} == {1, 2}


# ------------------------------------------------------------------------- training, resume
def fingerprint(ckpt: Path) -> dict[str, str]:
    manifest = json.loads((ckpt / "manifest.json").read_text())
    return {name: manifest[name]["sha256"] for name in ("model.safetensors", "trainer_state.safetensors")}


def run(tmp_path: Path, out: str, steps: int) -> list[str]:
    return data(
        tmp_path,
        ["general.tsv", {"split": "indomain.tsv", "weight": 2.5}],
        f"train.output_dir={tmp_path / out}",
        f"train.max_steps={steps}",
        "train.precision=fp32",
        "train.seed=5",
        "train.accumulate=2",
        "train.warmup_steps=5",
        "train.valid_every=6",
        "train.log_every=1",
        "train.keep_last=0",
        "train.valid_bleu=false",
        "train.early_stop_metric=loss",
        "model.encoder=gru",
        "model.decoder=gru",
        "model.d_model=16",
        "model.dropout=0.3",
        "train.max_tokens=120",
    )


def test_resume_mid_epoch_with_two_weighted_corpora_is_bit_identical(tmp_path):
    """Stopped inside epoch 0 and inside epoch 1 (the in-domain half drawn afresh there), resumed
    each time: the same bytes as a run never stopped."""
    Trainer(load_config(None, run(tmp_path, "ref", 30))).fit()
    stops = []
    for steps in (7, 17, 30):
        trainer = Trainer(load_config(None, run(tmp_path, "run", steps)), resume=steps != 7)
        trainer.fit()
        stops.append((trainer.state.epoch, trainer.state.batches_done))
    assert stops[0][0] == 0 and stops[1][0] == 1 and stops[2][0] == 2, stops
    assert all(done > 0 for _, done in stops[:2]), stops  # mid-epoch
    assert fingerprint(tmp_path / "run" / "last") == fingerprint(tmp_path / "ref" / "last")
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "train"] == list(range(1, 31))


@pytest.mark.slow
def test_two_processes_read_the_same_weighted_batches(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")

    def settings(out: str, max_tokens: int) -> list[str]:
        return [
            *run(tmp_path, out, 6),
            f"train.max_tokens={max_tokens}",
            "model.dropout=0",
            "train.accumulate=1",
        ]

    Trainer(load_config(None, settings("single", 80))).fit()
    (tmp_path / "empty.yaml").write_text("{}\n")
    sets = [x for o in settings("ddp", 40) for x in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*command, "-m", "seq2seq", "train", str(tmp_path / "empty.yaml"), *sets],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("weight 2.5: 100 samples an epoch") == 1  # rank 0's line alone
    assert len(re.findall(r"token store of \S*indomain.tsv", proc.stderr)) == 1

    def losses(out: str) -> list[float]:
        lines = (tmp_path / out / "train_log.jsonl").read_text().splitlines()
        return [r["loss"] for r in map(json.loads, lines) if r["event"] == "train"]

    assert losses("ddp") == pytest.approx(losses("single"), rel=1e-4)
