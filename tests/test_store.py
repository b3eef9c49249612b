"""Issue 18: the token store (training data tokenized once, memory-mapped after).

Built, reused and rebuilt when a data file or the tokenizer changes; an interrupted build
leaves nothing that is used; the rows it selects and the examples it gives are those of the
in-memory path; training from it resumes bit for bit; ``seq2seq prepare`` builds it alone.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

import seq2seq.data.store_build as store_module
from seq2seq.cli import main
from seq2seq.config import DataConfig, load_config
from seq2seq.data.batching import encode_labelled, encode_pairs
from seq2seq.data.loading import (
    TextSource,
    load_labelled,
    load_monolingual,
    load_parallel,
    open_labelled,
    open_monolingual,
    open_parallel,
)
from seq2seq.data.store import StoreExamples, TokenStore, select_labelled, select_pairs
from seq2seq.data.store_build import open_store, store_dir
from seq2seq.data.store_key import store_spec
from seq2seq.data.textio import iter_line_blocks, read_lines
from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair
from seq2seq.errors import DataError
from seq2seq.train.trainer import Trainer

WORDS = "ein zwei drei vier fünf sechs sieben acht neun zehn the a of and to in".split()
READING = {"format": "text"}


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Pairs of 0-12 words, with empty, blank and whitespace-only lines among them."""
    rng = random.Random(seed)
    src, tgt = [], []
    for i in range(n):
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
        t = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
        if i % 17 == 3:
            s = "   "
        if i % 23 == 5:
            t = "\u2028 \t"
        src.append(s)
        tgt.append(t)
    return src, tgt


def write_pair(directory: Path, src: list[str], tgt: list[str], prefix: str = "train") -> None:
    (directory / f"{prefix}.de").write_text("".join(s + "\n" for s in src), encoding="utf-8")
    (directory / f"{prefix}.en").write_text("".join(t + "\n" for t in tgt), encoding="utf-8")


def tokenizer(texts: list[str], vocab: int = 60) -> TokenizerPair:
    return TokenizerPair(SpmTokenizer.train(texts, vocab_size=vocab, model_type="bpe"))


def data_config(directory: Path) -> DataConfig:
    return DataConfig(format="text", path=str(directory), src_lang="de", tgt_lang="en")


def open_train(directory: Path, tokenizers: TokenizerPair, cache: Path, **kw: object) -> TokenStore:
    source = open_parallel(data_config(directory), "train")
    spec = store_spec("pairs", source, READING, "none", tokenizers)
    return open_store(cache, spec, source, tokenizers, progress=False, **kw)


# ------------------------------------------------------------------------- reading, streamed
@pytest.mark.parametrize("block", [1, 5, 64, 1 << 22])
def test_line_blocks_are_the_lines_read_lines_gives(tmp_path, block):
    data = "\ufeffa\r\nb\rc\n\n\u2028x\r\r\n" + "long " * 50 + "\nlast\r"
    for name, raw in (("plain", data.encode()), ("gz", gzip.compress(data.encode()))):
        path = tmp_path / name
        path.write_bytes(raw)
        blocks = list(iter_line_blocks(path, block))
        assert all(blocks) and [line for b in blocks for line in b] == read_lines(path)


def test_streamed_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\n" * 100 + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"bad.txt:101: not valid UTF-8"):
        list(iter_line_blocks(path, 16))
    (tmp_path / "t.de").write_text("a\nb\nc\n")
    (tmp_path / "t.en").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"t.de has 3 lines, .*t.en has 2"):
        list(open_parallel(data_config(tmp_path), "t").blocks())


def test_sources_give_what_the_loaders_give(tmp_path):
    src, tgt = corpus(300)
    write_pair(tmp_path, src, tgt)
    cfg = data_config(tmp_path)
    loaded = load_parallel(cfg, "train")
    assert (loaded.src, loaded.tgt) == (src, tgt)
    (tmp_path / "mono.txt").write_text("".join(s + "\r\n" for s in src))
    mono = load_monolingual(cfg, "mono.txt")
    assert mono.src == mono.tgt == src
    assert [s for b in open_monolingual(cfg, "mono.txt").blocks() for s in b[1]] == src
    (tmp_path / "l.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t {i % 3} \n" for i, s in enumerate(src)))
    tsv = DataConfig(format="tsv", path=str(tmp_path), skip_header=True)
    labelled = load_labelled(tsv, "l.tsv")
    assert labelled.src == src and labelled.tgt == [str(i % 3) for i in range(len(src))]
    assert [t for b in open_labelled(tsv, "l.tsv").blocks() for t in b[1]] == labelled.tgt


# ------------------------------------------------------------------ build, reuse, invalidate
def test_store_holds_the_ids_and_is_reused(tmp_path, caplog):
    src, tgt = corpus(500)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    cache = tmp_path / "cache"
    store = open_train(tmp_path, tok, cache)
    assert store.size == 500 and store.kind == "pairs"
    for i in range(500):
        want_src = [] if src[i].isspace() else tok.src.encode(src[i])
        want_tgt = [] if tgt[i].isspace() else tok.tgt.encode(tgt[i])
        assert store.src(i) == want_src and store.tgt(i) == want_tgt
    assert store.src_lengths.tolist() == [len(store.src(i)) for i in range(500)]
    stamp = (store.path / "meta.json").stat().st_mtime_ns
    again = open_train(tmp_path, tok, cache)  # found, not built
    assert again.path == store.path and (again.path / "meta.json").stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [store.path.name]


def test_changed_data_or_tokenizer_builds_another_store(tmp_path):
    src, tgt = corpus(200)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    cache = tmp_path / "cache"
    first = open_train(tmp_path, tok, cache)
    other_tok = tokenizer(src + tgt, vocab=45)
    second = open_train(tmp_path, other_tok, cache)
    assert second.path != first.path and second.src(0) == other_tok.src.encode(src[0])
    tgt[0] = "zehn zehn zehn"
    write_pair(tmp_path, src, tgt)  # same files, new content
    third = open_train(tmp_path, tok, cache)
    assert third.path not in (first.path, second.path)
    assert third.tgt(0) == tok.tgt.encode("zehn zehn zehn")
    assert len(list(cache.iterdir())) == 3


def test_interrupted_build_leaves_no_store_and_the_next_build_succeeds(tmp_path, monkeypatch):
    src, tgt = corpus(3000)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    cache = tmp_path / "cache"
    real_add = store_module._Writer.add
    calls = [0]

    def failing_add(self, block):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the build
        real_add(self, block)

    monkeypatch.setattr(store_module._Writer, "add", failing_add)
    monkeypatch.setattr(store_module, "usable_cpus", lambda: 1)  # in this process, where the patch is
    source = small_blocks(open_parallel(data_config(tmp_path), "train"))
    spec = store_spec("pairs", source, READING, "none", tok)
    with pytest.raises(KeyboardInterrupt):
        open_store(cache, spec, source, tok, progress=False)
    assert calls[0] == 2 and list(cache.iterdir()) == []  # no store, no temporary directory
    monkeypatch.setattr(store_module._Writer, "add", real_add)
    store = open_store(cache, spec, source, tok, progress=False)
    assert store.size == 3000 and store.src(2999) == ([] if src[2999].isspace() else tok.src.encode(src[2999]))


def small_blocks(source: TextSource) -> TextSource:
    """The source with its pairs in blocks of 250 (so that a small corpus has several)."""

    def blocks():
        for src, tgt in source.read():
            for i in range(0, len(src), 250):
                yield src[i : i + 250], tgt[i : i + 250]

    return TextSource(source.name, source.files, blocks, source.monolingual)


def test_killed_build_is_never_used(tmp_path):
    src, tgt = corpus(100)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    cache = tmp_path / "cache"
    source = open_parallel(data_config(tmp_path), "train")
    spec = store_spec("pairs", source, READING, "none", tok)
    final = store_dir(cache, spec)
    # What a SIGKILL leaves: a temporary directory of a process that is gone, without meta.json.
    dead = f"{store_module._TMP_PREFIX}{final.name}-999999-abcd1234"
    (cache / dead).mkdir(parents=True)
    (cache / dead / "src.tok").write_bytes(b"\0" * 10)
    # And a store directory whose meta.json was never written is not a store either.
    store = open_store(cache, spec, source, tok, progress=False)
    assert store.path == final and not (cache / dead).exists()
    (final / "meta.json").unlink()
    with pytest.raises(DataError, match="not a complete token store"):
        TokenStore(final)


def test_parallel_build_equals_in_process_build(tmp_path, monkeypatch):
    src, tgt = corpus(2000, seed=3)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    source = small_blocks(open_parallel(data_config(tmp_path), "train"))
    spec = store_spec("pairs", source, READING, "none", tok)
    one = open_store(tmp_path / "one", spec, source, tok, workers=1, progress=False)
    two = open_store(tmp_path / "two", spec, source, tok, workers=2, progress=False)
    for name in ("src.tok", "src.len", "tgt.tok", "tgt.len"):
        assert (one.path / name).read_bytes() == (two.path / name).read_bytes(), name


# -------------------------------------------------------------- selection = the old in-memory path
@pytest.mark.parametrize("limits", [(128, 128, 1), (6, 5, 2), (0, 0, 0), (3, 1, 1)])
def test_length_filter_matches_the_in_memory_path(tmp_path, limits):
    src, tgt = corpus(800, seed=1)
    write_pair(tmp_path, src, tgt)
    tok = tokenizer(src + tgt)
    store = open_train(tmp_path, tok, tmp_path / "cache")
    max_src, max_tgt, min_tokens = limits
    examples, stats = encode_pairs(load_parallel(data_config(tmp_path), "train"), tok, max_src, max_tgt, min_tokens)
    chosen = select_pairs(store, max_src, max_tgt, min_tokens)
    assert chosen.rows.tolist() == [e.index for e in examples]
    assert (len(chosen.rows), chosen.empty, chosen.too_short, chosen.too_long) == (
        stats.kept,
        stats.empty,
        stats.too_short,
        stats.too_long,
    )
    got = StoreExamples(store, chosen.rows).examples(range(len(chosen.rows)))
    assert got == examples


def test_labelled_and_monolingual_stores_match_the_in_memory_path(tmp_path):
    src, _ = corpus(400, seed=2)
    rows = [f"{s}\t{['neg', 'pos', '10', '2'][i % 4]}" for i, s in enumerate(src)]
    (tmp_path / "l.tsv").write_text("".join(r + "\n" for r in rows))
    cfg = DataConfig(format="tsv", path=str(tmp_path))
    tok = tokenizer(src)
    source = open_labelled(cfg, "l.tsv")
    store = open_store(tmp_path / "c", store_spec("labelled", source, {}, "none", tok), source, tok, progress=False)
    labels = ["2", "10", "neg", "pos"]
    ids = {label: i for i, label in enumerate(labels)}
    examples, stats = encode_labelled(load_labelled(cfg, "l.tsv"), tok.src, ids, 7)
    chosen = select_labelled(store, 7)
    assert chosen.rows.tolist() == [e.index for e in examples] and chosen.too_long == stats.too_long
    label_map = [ids[label] for label in store.labels]
    assert StoreExamples(store, chosen.rows, label_map).examples(range(len(chosen.rows))) == examples

    (tmp_path / "m.txt").write_text("".join(s + "\n" for s in src))
    source = open_monolingual(DataConfig(format="text", path=str(tmp_path)), "m.txt")
    mono = open_store(tmp_path / "c", store_spec("monolingual", source, {}, "none", tok), source, tok, progress=False)
    assert not (mono.path / "tgt.tok").exists()
    examples, _ = encode_pairs(load_monolingual(DataConfig(format="text", path=str(tmp_path)), "m.txt"), tok, 9, 9, 2)
    chosen = select_pairs(mono, 9, 9, 2)
    assert StoreExamples(mono, chosen.rows).examples(range(len(chosen.rows))) == examples


def test_empty_split_is_the_loaders_error(tmp_path):
    write_pair(tmp_path, ["", "  "], ["a", "b"])
    tok = tokenizer(["a b c", "d e f"], vocab=20)
    with pytest.raises(DataError, match=r"only empty or blank lines \(2\)"):
        open_train(tmp_path, tok, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ---------------------------------------------------------------------------------- training
def train_config(tmp_path: Path, out: str, *extra: str) -> list[str]:
    return [
        f"train.output_dir={tmp_path / out}",
        "train.precision=fp32",
        "train.threads=1",
        "train.max_tokens=64",
        "train.warmup_steps=5",
        "train.valid_every=5",
        "train.progress=false",
        "train.log_every=1",
        "train.keep_last=0",
        "train.seed=3",
        "tokenizer.vocab_size=50",
        "model.encoder=gru",
        "model.decoder=gru",
        "model.d_model=16",
        "model.dropout=0.2",
        "data.format=text",
        f"data.path={tmp_path}",
        "data.src_lang=de",
        "data.tgt_lang=en",
        "data.valid=valid",
        "train.early_stop_metric=loss",
        "data.max_src_tokens=10",
        f"data.cache_dir={tmp_path / 'cache'}",
        *extra,
    ]


def test_training_reads_the_store_and_resumes_bit_identically(tmp_path):
    src, tgt = corpus(300, seed=4)
    write_pair(tmp_path, src, tgt)
    write_pair(tmp_path, src[:20], tgt[:20], "valid")
    Trainer(load_config(None, [*train_config(tmp_path, "ref"), "train.max_steps=12"])).fit()
    stores = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("spm-")]
    assert len(stores) == 1 and (tmp_path / "cache").joinpath(stores[0].name, "meta.json").is_file()
    Trainer(load_config(None, [*train_config(tmp_path, "run"), "train.max_steps=7"])).fit()
    Trainer(load_config(None, [*train_config(tmp_path, "run"), "train.max_steps=12"]), resume=True).fit()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith("spm-")] == [stores[0].name]
    for name in ("model.safetensors", "trainer_state.safetensors"):
        a = json.loads((tmp_path / "ref" / "last" / "manifest.json").read_text())[name]
        b = json.loads((tmp_path / "run" / "last" / "manifest.json").read_text())[name]
        assert a == b, name
    start = [json.loads(line) for line in (tmp_path / "ref" / "train_log.jsonl").read_text().splitlines()][0]
    assert start["filtered"].startswith("kept ") and "too long" in start["filtered"]


def test_prepare_builds_what_train_uses(tmp_path, capsys):
    src, tgt = corpus(200, seed=5)
    write_pair(tmp_path, src, tgt)
    write_pair(tmp_path, src[:10], tgt[:10], "valid")
    config = tmp_path / "c.yaml"
    config.write_text("task: translation\n")
    flags = [f"--set={o}" for o in train_config(tmp_path, "run", "train.max_steps=2")]
    assert main(["prepare", str(config), *flags]) == 0
    out = capsys.readouterr().out
    assert "token store" in out and "200 pairs" in out
    built = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert any(n.startswith("spm-") for n in built) and len(built) == 2
    assert not (tmp_path / "run").exists()  # nothing trained, no run directory
    stamps = {p.name: (p / "meta.json").stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    assert main(["train", str(config), *flags]) == 0
    assert {p.name: (p / "meta.json").stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == stamps


def test_default_cache_dir_is_beside_the_data(tmp_path):
    src, tgt = corpus(50)
    write_pair(tmp_path, src, tgt)
    source = open_parallel(data_config(tmp_path), "train")
    assert store_module.default_cache_dir(source) == tmp_path.resolve() / ".seq2seq-cache"
    os.chmod(tmp_path, 0o555)
    try:
        if not os.access(tmp_path, os.W_OK):  # root can write anywhere
            assert store_module.default_cache_dir(source).name == "seq2seq"
    finally:
        os.chmod(tmp_path, 0o755)


def test_sampler_on_store_lengths_is_flat(tmp_path):
    from seq2seq.data.samplers import TokenBudgetBatchSampler

    rng = np.random.default_rng(0)
    n = 300_000
    s = TokenBudgetBatchSampler(
        rng.integers(1, 90, n).astype(np.int32), rng.integers(1, 90, n).astype(np.int32), 4096, shuffle=True, seed=1
    )
    batches = s.ordered(3)
    assert len(batches) == len(s) and batches[0] == s.batches(3)[0] and batches[-1] == s.batches(3)[-1]
    assert sum(len(b) for b in batches) == n


@pytest.mark.parametrize("fmt", ["jsonl", "disk"])
def test_dataset_formats_are_stored_once(tmp_path, fmt):
    src, tgt = corpus(120, seed=6)
    src = [s or "x" for s in src]
    tgt = [t or "y" for t in tgt]
    if fmt == "jsonl":
        (tmp_path / "d.jsonl").write_text(
            "".join(json.dumps({"translation": {"de": s, "en": t}}) + "\n" for s, t in zip(src, tgt))
        )
        cfg, split = DataConfig(format="jsonl", path=str(tmp_path), src_lang="de", tgt_lang="en"), "d.jsonl"
    else:
        import datasets

        datasets.DatasetDict({"train": datasets.Dataset.from_dict({"de": src, "en": tgt})}).save_to_disk(
            str(tmp_path / "dd")
        )
        cfg, split = DataConfig(format="disk", path=str(tmp_path / "dd"), src_lang="de", tgt_lang="en"), "train"
    tok = tokenizer(src + tgt)
    source = open_parallel(cfg, split)
    cache = store_module.default_cache_dir(source)  # inside the dataset's directory for disk
    first = open_store(cache, store_spec("pairs", source, {}, "none", tok), source, tok, progress=False)
    again = open_parallel(cfg, split)
    second = open_store(cache, store_spec("pairs", again, {}, "none", tok), again, tok, build=False, progress=False)
    assert second.path == first.path and first.size == 120
    loaded = load_parallel(cfg, split)
    assert [first.src(i) for i in range(120)] == [[] if s.isspace() else tok.src.encode(s) for s in loaded.src]
