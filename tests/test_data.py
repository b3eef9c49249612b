"""Tests for seq2seq.data: text reading, tokenizers, loading, filtering, batching."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.config import DataConfig, TokenizerConfig
from seq2seq.data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Example,
    ParallelText,
    SpmTokenizer,
    TokenBudgetBatchSampler,
    TokenizerPair,
    check_text_file,
    collate,
    collate_source,
    encode_pairs,
    load_parallel,
    read_lines,
)
from seq2seq.errors import DataError

DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest ein Buch.",
    "",
    "Kinder laufen am Strand.",
]
EN = [
    "A man rides a bike.",
    "Two dogs play in the snow.",
    "A woman reads a book.",
    "",
    "Children run on the beach.",
]


def write(path: Path, lines: list[str], gz: bool = False, newline: str = "\n") -> Path:
    data = "".join(line + newline for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str]]:
    """A small but varied corpus for training tokenizers."""
    words_de = "der die das ein eine Mann Frau Kind Hund Katze läuft spielt sitzt liest im am auf".split()
    words_en = "the a man woman child dog cat runs plays sits reads in on at".split()
    rng = np.random.default_rng(0)
    src = [" ".join(rng.choice(words_de, size=rng.integers(3, 9))) + "." for _ in range(300)]
    tgt = [" ".join(rng.choice(words_en, size=rng.integers(3, 9))) + "." for _ in range(300)]
    return src, tgt


# ----------------------------------------------------------------------------------- textio
def test_read_lines_plain_gzip_crlf_bom(tmp_path: Path) -> None:
    lines = ["héllo", "", "wörld\tx", " trailing space "]
    assert read_lines(write(tmp_path / "a.txt", lines)) == lines
    assert read_lines(write(tmp_path / "b.txt.gz", lines, gz=True)) == lines
    # gzip detected by magic bytes even without a .gz suffix
    assert read_lines(write(tmp_path / "c.txt", lines, gz=True)) == lines
    assert read_lines(write(tmp_path / "d.txt", lines, newline="\r\n")) == lines
    (tmp_path / "e.txt").write_bytes(b"\xef\xbb\xbfbom\r\nline2")  # BOM, no final newline
    assert read_lines(tmp_path / "e.txt") == ["bom", "line2"]
    # a lone \r inside a line does not split it (line alignment)
    (tmp_path / "f.txt").write_bytes(b"a\rb\nc\n")
    assert read_lines(tmp_path / "f.txt") == ["a\rb", "c"]
    (tmp_path / "empty.txt").write_bytes(b"")
    assert read_lines(tmp_path / "empty.txt") == []
    assert check_text_file(tmp_path / "a.txt") == 4


def test_read_lines_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.de"
    bad.write_bytes(b"ok\nstill ok\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad\.de:3: not valid UTF-8"):
        read_lines(bad)
    with pytest.raises(DataError, match=r"bad\.de:3"):
        check_text_file(bad)
    gz = tmp_path / "bad.gz"
    gz.write_bytes(gzip.compress(b"x\n\xfe\n"))
    with pytest.raises(DataError, match=r"bad\.gz:2"):
        read_lines(gz)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a\nb\nc\x00d\n")
    with pytest.raises(DataError, match=r"nul\.txt:3: contains a NUL byte"):
        read_lines(nul)
    with pytest.raises(DataError, match="file not found"):
        read_lines(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)
    trunc = tmp_path / "trunc.gz"
    trunc.write_bytes(gzip.compress(b"hello\n" * 100)[:20])
    with pytest.raises(DataError, match="gzip"):
        read_lines(trunc)


# ----------------------------------------------------------------------------------- loading
def test_load_text_plain_and_gzip(tmp_path: Path) -> None:
    write(tmp_path / "train.de", DE)
    write(tmp_path / "train.en.gz", EN, gz=True, newline="\r\n")
    cfg = DataConfig(format="text", path=str(tmp_path), src_lang="de", tgt_lang="en")
    pt = load_parallel(cfg, "train")
    assert pt.src == DE and pt.tgt == EN  # empty line kept, CRLF stripped
    assert "train" in pt.name and len(pt) == 5


def test_load_text_errors(tmp_path: Path) -> None:
    write(tmp_path / "x.de", DE)
    write(tmp_path / "x.en", EN[:3])
    cfg = DataConfig(format="text", path=str(tmp_path), src_lang="de", tgt_lang="en")
    with pytest.raises(DataError) as e:
        load_parallel(cfg, "x")
    msg = str(e.value)
    assert "x.de" in msg and "x.en" in msg and "5" in msg and "3" in msg
    with pytest.raises(DataError) as e:
        load_parallel(cfg, "nothere")
    assert "nothere.de" in str(e.value) and "nothere.de.gz" in str(e.value)
    (tmp_path / "u.de").write_bytes(b"fine\n\xc3\x28\n")
    write(tmp_path / "u.en", ["a", "b"])
    with pytest.raises(DataError, match=r"u\.de:2"):
        load_parallel(cfg, "u")


def test_load_tsv(tmp_path: Path) -> None:
    lines = ['He said "hi"\tEr sagte "hallo"', "\t", "a, b\tc; d"]
    write(tmp_path / "pairs.tsv", lines, newline="\r\n")
    cfg = DataConfig(format="tsv", path=str(tmp_path))
    pt = load_parallel(cfg, "pairs.tsv")
    assert pt.src == ['He said "hi"', "", "a, b"]
    assert pt.tgt == ['Er sagte "hallo"', "", "c; d"]
    write(tmp_path / "bad.tsv", ["a\tb", "no tab here"])
    with pytest.raises(DataError, match=r"bad\.tsv:2"):
        load_parallel(cfg, "bad.tsv")
    write(tmp_path / "bad2.tsv", ["a\tb\tc"])
    with pytest.raises(DataError, match=r"bad2\.tsv:1.*2 TABs"):
        load_parallel(cfg, "bad2.tsv")


def test_load_jsonl(tmp_path: Path) -> None:
    nested = [{"translation": {"de": d, "en": e}} for d, e in zip(DE, EN)]
    (tmp_path / "n.jsonl").write_text("\n".join(json.dumps(r) for r in nested) + "\n")
    flat = [{"de": d, "en": e, "id": i} for i, (d, e) in enumerate(zip(DE, EN))]
    (tmp_path / "f.jsonl").write_text("\n".join(json.dumps(r) for r in flat) + "\n")
    cfg = DataConfig(format="jsonl", path=str(tmp_path), src_lang="de", tgt_lang="en")
    for name in ("n.jsonl", "f.jsonl"):
        pt = load_parallel(cfg, name)
        assert pt.src == DE and pt.tgt == EN, name
    with pytest.raises(DataError) as e:
        load_parallel(DataConfig(format="jsonl", path=str(tmp_path), src_lang="fr", tgt_lang="en"), "n.jsonl")
    assert "'fr'" in str(e.value) and "de" in str(e.value) and "en" in str(e.value)
    (tmp_path / "broken.jsonl").write_text('{"de": "a", "en": "b"}\n{"de": "c", "en": \n')
    with pytest.raises(DataError, match=r"broken\.jsonl:2"):
        load_parallel(cfg, "broken.jsonl")
    (tmp_path / "enc.jsonl").write_bytes(b'{"de": "a", "en": "b"}\n{"de": "\xff", "en": "b"}\n')
    with pytest.raises(DataError, match=r"enc\.jsonl:2"):
        load_parallel(cfg, "enc.jsonl")
    (tmp_path / "null.jsonl").write_text('{"de": "a"}\n{"de": "c", "en": "d"}\n')
    with pytest.raises(DataError, match="record 1"):
        load_parallel(cfg, "null.jsonl")
    with pytest.raises(DataError, match="not found"):
        load_parallel(cfg, "missing.jsonl")


def test_load_disk(tmp_path: Path) -> None:
    import datasets

    nested = datasets.Dataset.from_dict({"translation": [{"de": d, "en": e} for d, e in zip(DE, EN)]})
    flat = datasets.Dataset.from_dict({"de": DE[:2], "en": EN[:2]})
    datasets.DatasetDict({"train": nested, "valid": flat}).save_to_disk(str(tmp_path / "dd"))
    cfg = DataConfig(format="disk", path=str(tmp_path / "dd"), src_lang="de", tgt_lang="en")
    train = load_parallel(cfg, "train")
    assert train.src == DE and train.tgt == EN
    valid = load_parallel(cfg, "valid")
    assert valid.src == DE[:2] and valid.tgt == EN[:2]
    with pytest.raises(DataError, match="splits present: train, valid"):
        load_parallel(cfg, "test")
    # one saved Dataset per split: PATH/SPLIT
    flat.save_to_disk(str(tmp_path / "per" / "dev"))
    per = DataConfig(format="disk", path=str(tmp_path / "per"), src_lang="de", tgt_lang="en")
    assert load_parallel(per, "dev").tgt == EN[:2]
    wrong = DataConfig(format="disk", path=str(tmp_path / "dd"), src_lang="de", tgt_lang="fr")
    with pytest.raises(DataError, match="'fr'"):
        load_parallel(wrong, "valid")


def test_load_bad_format_and_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data.format"):
        load_parallel(DataConfig(format="csv"), "x")
    with pytest.raises(DataError, match="no split"):
        load_parallel(DataConfig(format="text", path=str(tmp_path)), "")


# ----------------------------------------------------------------------------------- tokenizer
def test_tokenizer_train_roundtrip(tmp_path: Path, corpus: tuple[list[str], list[str]]) -> None:
    src, _ = corpus
    tok = SpmTokenizer.train(src, vocab_size=60)
    assert tok.id_to_piece(PAD_ID) == "<pad>" and tok.id_to_piece(UNK_ID) == "<unk>"
    assert tok.id_to_piece(BOS_ID) == "<s>" and tok.id_to_piece(EOS_ID) == "</s>"
    for s in src[:20]:
        ids = tok.encode(s)
        assert BOS_ID not in ids and EOS_ID not in ids
        assert tok.decode(ids) == s
        assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == s
    assert tok.encode_batch(src[:5]) == [tok.encode(s) for s in src[:5]]
    assert "".join(tok.pieces(src[0])).replace("▁", " ").strip() == src[0]
    tok.save(tmp_path / "sub" / "m.model")
    again = SpmTokenizer.load(tmp_path / "sub" / "m.model")
    assert again.fingerprint == tok.fingerprint and len(tok.fingerprint) == 16
    assert SpmTokenizer.from_bytes(tok.model_bytes).encode(src[1]) == tok.encode(src[1])
    # a small corpus never fails for a too-large vocabulary
    big = SpmTokenizer.train(src, vocab_size=50_000, model_type="unigram")
    assert big.vocab_size < 50_000
    word = SpmTokenizer.train(src, vocab_size=100, model_type="word")
    assert word.decode(word.encode(src[2])) == src[2]


def test_tokenizer_char_and_lowercase() -> None:
    digits = [" ".join(str(n)) for n in range(100)] + [str(n) for n in range(1000, 1100)]
    char = SpmTokenizer.train(digits + ["four thousand twenty one"], vocab_size=1, model_type="char")
    ids = char.encode("4021")
    assert len(ids) == 4 and UNK_ID not in ids
    assert char.pieces("4021") == ["4", "0", "2", "1"]
    assert char.decode(char.encode("four thousand")) == "four thousand"
    low = SpmTokenizer.train(["Hello World", "HELLO"], vocab_size=30, lowercase=True)
    assert low.decode(low.encode("HELLO World")) == "hello world"


def test_tokenizer_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty corpus"):
        SpmTokenizer.train(["", "  ", "\t"], vocab_size=10)
    with pytest.raises(DataError, match="not found"):
        SpmTokenizer.load(tmp_path / "nope.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(DataError, match="junk.model"):
        SpmTokenizer.load(tmp_path / "junk.model")
    with pytest.raises(DataError, match="expected spm.model"):
        TokenizerPair.load(tmp_path)


def test_tokenizer_pair_joint_and_separate(tmp_path: Path, corpus: tuple[list[str], list[str]]) -> None:
    src, tgt = corpus
    joint = TokenizerPair.build(TokenizerConfig(vocab_size=80, joint=True), src, tgt)
    assert joint.joint and joint.src is joint.tgt
    assert joint.tgt.decode(joint.tgt.encode(tgt[0])) == tgt[0]
    joint.save(tmp_path / "j")
    assert (tmp_path / "j" / "spm.model").is_file()
    loaded = TokenizerPair.load(tmp_path / "j")
    assert loaded.joint and loaded.fingerprint == joint.fingerprint

    sep = TokenizerPair.build(TokenizerConfig(vocab_size=60, joint=False), src, tgt)
    assert not sep.joint and sep.src.fingerprint != sep.tgt.fingerprint
    sep.save(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["src.spm.model", "tgt.spm.model"]
    again = TokenizerPair.load(tmp_path / "s")
    assert not again.joint
    assert again.src.decode(again.src.encode(src[3])) == src[3]
    assert again.tgt.decode(again.tgt.encode(tgt[3])) == tgt[3]
    (tmp_path / "s" / "tgt.spm.model").unlink()
    with pytest.raises(DataError, match="tgt.spm.model"):
        TokenizerPair.load(tmp_path / "s")

    # reuse existing model files instead of training
    cfg = TokenizerConfig(
        joint=False,
        model=str(tmp_path / "s" / "src.spm.model"),
        tgt_model=str(tmp_path / "j" / "spm.model"),
    )
    reused = TokenizerPair.build(cfg, [], [])
    assert reused.src.fingerprint == sep.src.fingerprint
    assert reused.tgt.fingerprint == joint.src.fingerprint


# ----------------------------------------------------------------------------------- filtering
def test_encode_pairs_filters_and_counts(corpus: tuple[list[str], list[str]]) -> None:
    src, tgt = corpus
    pair = TokenizerPair(SpmTokenizer.train(src + tgt + ["x y z"], vocab_size=100))
    text = ParallelText(
        src=["der Mann läuft.", "", "der Hund", "   ", "der " * 40, "x"],
        tgt=["the man runs.", "the dog", "", "a", "the dog", "the " * 40],
        name="t",
    )
    examples, stats = encode_pairs(text, pair, max_src_tokens=20, max_tgt_tokens=20, min_tokens=1)
    assert [e.index for e in examples] == [0]
    assert (stats.kept, stats.empty, stats.too_long, stats.total) == (1, 3, 2, 6)
    assert "kept 1 of 6" in stats.summary() and "3 empty" in stats.summary()
    _, stats = encode_pairs(text, pair, 20, 20, min_tokens=3)
    assert (stats.too_short, stats.kept) == (2, 1)  # "x" and "the dog" (checked before length)
    # target limit counts EOS
    n = len(pair.tgt.encode("the man runs."))
    _, stats = encode_pairs(text, pair, 100, n, min_tokens=1)
    assert stats.too_long >= 1 and 0 not in [e.index for e in _]
    kept, stats = encode_pairs(text, pair, 100, n + 1, min_tokens=1)
    assert 0 in [e.index for e in kept]
    # drop=False keeps every line in order, truncating
    everything, stats = encode_pairs(text, pair, 5, 5, drop=False)
    assert [e.index for e in everything] == list(range(6)) and stats.kept == 6
    assert all(len(e.src) <= 5 and len(e.tgt) <= 4 for e in everything)
    long = [len(pair.src.encode(a)) > 5 or len(pair.tgt.encode(b)) > 4 for a, b in zip(text.src, text.tgt)]
    assert stats.truncated == sum(long) >= 2


# ----------------------------------------------------------------------------------- sampler
def _check_budget(batches: list[list[int]], src: np.ndarray, tgt: np.ndarray, budget: int) -> None:
    for b in batches:
        width = max(max(src[i], tgt[i] + 1) for i in b)
        assert len(b) * width <= budget or len(b) == 1


def test_sampler_covers_respects_budget_and_shuffles() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 60, size=2000)
    tgt = rng.integers(0, 60, size=2000)
    s = TokenBudgetBatchSampler(src, tgt, max_tokens=300, seed=7)
    e0, e1 = s.batches(0), s.batches(1)
    for batches in (e0, e1):
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(2000))
        _check_budget(batches, src, tgt, 300)
        assert len(batches) == len(s)
    assert e0 != e1
    assert TokenBudgetBatchSampler(src, tgt, max_tokens=300, seed=7).batches(1) == e1
    s.set_epoch(1)
    assert list(s) == e1
    assert TokenBudgetBatchSampler(src, tgt, 300, seed=8).batches(1) != e1
    # batches group similar lengths
    spread = np.mean([tgt[b].max() - tgt[b].min() for b in map(np.array, e0)])
    assert spread < 5
    # sentence cap
    capped = TokenBudgetBatchSampler(src, tgt, max_tokens=10_000, max_sentences=7)
    assert max(len(b) for b in capped.batches(0)) <= 7


def test_sampler_oversize_and_unshuffled() -> None:
    src = [3, 500, 4, 2, 3]
    tgt = [3, 2, 900, 2, 3]
    s = TokenBudgetBatchSampler(src, tgt, max_tokens=10, shuffle=False)
    batches = s.batches(0)
    assert [1] in batches and [2] in batches
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert batches == s.batches(5)  # no shuffling: same every epoch
    order = [i for b in batches for i in b]
    assert [tgt[i] for i in order] == sorted(tgt)


def test_sampler_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    t = time.perf_counter()
    s = TokenBudgetBatchSampler(rng.integers(1, 100, n), rng.integers(1, 100, n), 4096)
    assert sum(len(b) for b in s.batches(0)) == n
    assert time.perf_counter() - t < 2.0  # typically ~0.1 s


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), min_size=0, max_size=200),
    max_tokens=st.integers(1, 400),
    max_sentences=st.integers(0, 10),
    shuffle=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_sampler_is_a_permutation(
    lengths: list[tuple[int, int]], max_tokens: int, max_sentences: int, shuffle: bool, epoch: int
) -> None:
    src = np.array([a for a, _ in lengths], dtype=np.int64)
    tgt = np.array([b for _, b in lengths], dtype=np.int64)
    s = TokenBudgetBatchSampler(src, tgt, max_tokens, max_sentences, shuffle=shuffle, seed=3)
    batches = s.batches(epoch)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(b for b in batches) and len(batches) == len(s)
    _check_budget(batches, src, tgt, max_tokens)
    if max_sentences:
        assert all(len(b) <= max_sentences for b in batches)


# ----------------------------------------------------------------------------------- collate
def test_collate_shapes_masks_bos_eos() -> None:
    examples = [
        Example(7, [10, 11, 12], [20]),
        Example(3, [13], [21, 22, 23, 24]),
        Example(5, [], []),
    ]
    b = collate(examples)
    assert b.src.shape == (3, 3) and b.src.dtype == torch.long
    assert b.tgt_in.shape == b.tgt_out.shape == b.tgt_mask.shape == (3, 5)
    assert b.src.tolist() == [[10, 11, 12], [13, PAD_ID, PAD_ID], [PAD_ID] * 3]
    assert b.src_mask.tolist() == [[True] * 3, [True, False, False], [False] * 3]
    assert b.tgt_in.tolist() == [
        [BOS_ID, 20, PAD_ID, PAD_ID, PAD_ID],
        [BOS_ID, 21, 22, 23, 24],
        [BOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID],
    ]
    assert b.tgt_out.tolist() == [
        [20, EOS_ID, PAD_ID, PAD_ID, PAD_ID],
        [21, 22, 23, 24, EOS_ID],
        [EOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID],
    ]
    assert b.tgt_mask.sum(1).tolist() == [2, 5, 1]
    assert b.tgt_mask.dtype == torch.bool and b.src_mask.dtype == torch.bool
    assert b.n_tgt_tokens == 8 == int(b.tgt_mask.sum())
    assert b.indices == [7, 3, 5] and len(b) == 3
    assert ((b.tgt_out == PAD_ID) == ~b.tgt_mask).all()
    moved = b.to("cpu")
    assert torch.equal(moved.tgt_out, b.tgt_out) and moved.indices == b.indices

    src, mask = collate_source([[5, 6], [7]])
    assert src.tolist() == [[5, 6], [7, PAD_ID]] and mask.tolist() == [[True, True], [True, False]]
    src, mask = collate_source([[]])
    assert src.shape == (1, 1) and not mask.any()
    # decoding pads to a multiple of 16 positions (Translator: batch-independent attention sums)
    src, mask = collate_source([[5] * 17, [7]], multiple=16)
    assert src.shape == (2, 32) and mask.sum(1).tolist() == [17, 1] and (src[:, 17:] == PAD_ID).all()
    assert collate_source([[5] * 16], multiple=16)[0].shape == (1, 16)
    assert collate_source([[5] * 17], multiple=16, limit=20)[0].shape == (1, 20)  # not past the limit...
    assert collate_source([[5] * 25], multiple=16, limit=20)[0].shape == (1, 25)  # ...nor below the longest
    with pytest.raises(ValueError, match="multiple"):
        collate_source([[5]], multiple=0)
    with pytest.raises(ValueError):
        collate([])


def test_end_to_end_small(tmp_path: Path, corpus: tuple[list[str], list[str]]) -> None:
    src, tgt = corpus
    write(tmp_path / "train.de", src)
    write(tmp_path / "train.en", tgt)
    cfg = DataConfig(format="text", path=str(tmp_path), src_lang="de", tgt_lang="en")
    text = load_parallel(cfg, "train")
    pair = TokenizerPair.build(TokenizerConfig(vocab_size=100), text.src, text.tgt)
    examples, stats = encode_pairs(text, pair, cfg.max_src_tokens, cfg.max_tgt_tokens)
    assert stats.kept == len(src)
    sampler = TokenBudgetBatchSampler([len(e.src) for e in examples], [len(e.tgt) for e in examples], max_tokens=200)
    seen = []
    for positions in sampler:
        batch = collate([examples[i] for i in positions])
        assert batch.src.numel() <= 200 or len(positions) == 1
        seen.extend(batch.indices)
    assert sorted(seen) == list(range(len(src)))
