"""The recipes' data generation, and small, fast versions of the digits and staged recipes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.data import read_lines

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes" / "digits_to_words"))
from number_data import balance_lengths, sample_numbers  # noqa: E402


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_sample_numbers_is_deterministic_distinct_and_covers_every_length():
    numbers = sample_numbers(5000, seed=3)
    assert numbers == sample_numbers(5000, seed=3)
    assert numbers != sample_numbers(5000, seed=4)
    assert len(set(numbers)) == len(numbers)
    assert all(0 <= n <= 999_999_999 for n in numbers)
    lengths = {len(str(n)) for n in numbers}
    assert lengths == set(range(1, 10))
    nine_digit = sum(len(str(n)) == 9 for n in numbers)
    assert nine_digit < 0.2 * len(numbers)  # not the 90% that uniform sampling would give
    # A prefix of a longer draw is the shorter draw: sizes nest.
    assert sample_numbers(100, seed=3) == numbers[:100]


def test_balance_lengths_repeats_only_rare_lengths():
    numbers = list(range(10)) + list(range(1000, 1100))
    balanced = balance_lengths(numbers)
    assert balanced.count(5) == 10 and balanced.count(1000) == 1


def test_digits_recipe_small(tmp_path):
    """The recipe end to end at toy size: data, training into the directory --set gives, the
    per-stratum table, and translate on what people type (normalized, unreadable input reported)."""
    out = tmp_path / "run"
    moved = tmp_path / "moved"  # train.output_dir overrides --output: evaluation follows it
    result = run_script(
        "recipes/digits_to_words/run.py",
        "--lang",
        "en",
        "--output",
        str(out),
        "--train-size",
        "600",
        "--valid-size",
        "50",
        "--test-size",
        "300",
        "--set",
        "train.max_steps=40",
        "--set",
        "train.max_minutes=0",
        "--set",
        "model.d_model=32",
        "--set",
        "train.progress=false",
        "--set",
        f"train.output_dir={moved}",
    )
    results = json.loads((moved / "results.json").read_text())
    assert not (out / "best").exists() and (out / "data" / "test.tsv").is_file()
    assert results["test_numbers"] == 300 + 1999 and 0.0 <= results["exact_match"] <= 100.0
    rows = {r["stratum"]: r for r in results["strata"]}
    for name in [
        "length  1",
        "length 13",
        "zeros: round",
        "zeros: zeros inside",
        "zeros: no zeros",
        "sign: negative",
        "form: decimal",
        "repeated digits",
        "overall",
    ]:
        assert name in rows and f"| {name} |" in result.stdout
    assert rows["overall"]["errors"] == results["errors"]
    assert sum(rows[f"length {n:>2}"]["numbers"] for n in range(1, 14)) == results["test_numbers"]
    assert "weakest stratum" in result.stdout
    log = [json.loads(line) for line in (moved / "train_log.jsonl").read_text().splitlines()]
    valid = [r for r in log if r["event"] == "valid"]
    assert valid and all("valid_chrf" in r and "valid_bleu" not in r for r in valid)  # no BLEU 0 next to 100%

    checkpoint = str(moved / "best")
    translate = [sys.executable, "-m", "seq2seq", "translate", "--checkpoint", checkpoint, "--quiet"]
    text = "4021\n\n1,000\nabc\n12345678901234567\n-007\n"
    translated = subprocess.run(translate, input=text, capture_output=True, text=True, timeout=120)
    assert translated.returncode == 0, translated.stderr
    assert len(translated.stdout.splitlines()) == 6  # N lines in, N lines out
    warning = translated.stderr.strip().splitlines()
    assert len(warning) == 1 and "seq2seq: warning: 2 of 6 input line(s)" in warning[0], warning
    assert "(read as <unk>): line 4" in warning[0] and "13 integer digits" in warning[0] and "line 5" in warning[0]
    same = subprocess.run(translate, input="1000\n1,000\n1 000\n001000\n", capture_output=True, text=True, timeout=120)
    assert len(set(same.stdout.splitlines())) == 1 and not same.stderr  # one normalisation before the model
    output = tmp_path / "out.txt"
    output.write_text("kept\n")
    strict = subprocess.run(
        [*translate, "--strict", "--output", str(output)], input=text, capture_output=True, text=True, timeout=120
    )
    assert strict.returncode == 2 and strict.stderr.startswith("seq2seq: error: 2 of 6 input line(s)")
    assert output.read_text() == "kept\n" and "Traceback" not in strict.stderr

    # --eval-only scores the run's checkpoint again (e.g. one trained on another machine) without training
    before = (moved / "best" / "model.safetensors").stat().st_mtime_ns
    again = run_script(
        "recipes/digits_to_words/run.py",
        "--lang",
        "en",
        "--output",
        str(out),
        "--train-size",
        "600",
        "--valid-size",
        "50",
        "--test-size",
        "300",
        "--set",
        f"train.output_dir={moved}",
        "--eval-only",
    )
    rescored = json.loads((moved / "results.json").read_text())
    assert (moved / "best" / "model.safetensors").stat().st_mtime_ns == before
    assert rescored["errors"] == results["errors"] and rescored["updates"] == results["updates"]
    assert "weakest stratum" in again.stdout


def test_staged_recipe_small(tmp_path):
    out = tmp_path / "sweep"
    result = run_script(
        "recipes/staged_vs_end2end/run.py",
        "--output",
        str(out),
        "--sizes",
        "150",
        "300",
        "--seeds",
        "1",
        "2",
        "--updates",
        "12",
        "--valid-size",
        "40",
        "--test-size",
        "60",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--set",
        "model.d_model=24",
    )
    root = out / "en"
    rows = json.loads((root / "results.json").read_text())["rows"]
    assert [(r["train_size"], r["regime"]) for r in rows] == [
        (size, regime) for size in (150, 300) for regime in ("end-to-end", "staged", "staged + fine-tuning")
    ]
    assert all(len(r["scores"]) == 2 for r in rows)
    table = (root / "results.md").read_text()
    assert table.count("\n| 150 |") == 3 and "staged + fine-tuning" in result.stdout
    png = (root / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Training sets nest: the smaller is a prefix of the larger (before balancing repeats).
    small = {line.split("\t")[0] for line in read_lines(root / "data" / "150" / "train.tsv")}
    large = {line.split("\t")[0] for line in read_lines(root / "data" / "300" / "train.tsv")}
    test = {line.split("\t")[0] for line in read_lines(root / "data" / "300" / "test.tsv")}
    assert small < large and not large & test
    # A finished sweep is not run again: the same table comes back in about a second.
    run_script(
        "recipes/staged_vs_end2end/run.py",
        "--output",
        str(out),
        "--sizes",
        "150",
        "300",
        "--seeds",
        "1",
        "2",
        "--updates",
        "12",
        "--valid-size",
        "40",
        "--test-size",
        "60",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--set",
        "model.d_model=24",
    )
    assert (root / "results.md").read_text() == table


# ------------------------------------------------------------------------ autoencoder recipe
def fake_sst2(directory: Path, n: int = 400) -> Path:
    import gzip
    import random

    rng = random.Random(0)
    words = ["good", "bad", "film", "plot", "dull", "fun", "story", "acting"]
    rows = [(" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) + " ", rng.randint(0, 1)) for _ in range(n)]
    directory.mkdir(parents=True, exist_ok=True)
    with gzip.open(directory / "train.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    (directory / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows[:40]))
    (directory / "test.tsv").write_text(
        "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(rows[:30]))
    )
    return directory


def test_autoencoder_prepare_makes_nested_disjoint_subsets(tmp_path):
    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    from prepare import prepare

    counts = prepare(fake_sst2(tmp_path / "sst2"), tmp_path / "out", held_out=50, select_min_words=5, select="items")
    select = read_lines(tmp_path / "out" / "select.tsv")
    assert all(len(line.split("\t")[0].split()) >= 5 for line in select)  # long held-out items
    assert not set(select) & set(read_lines(tmp_path / "out" / "train_100.tsv"))
    assert counts["pretrain.txt"] == 430 and counts["select.tsv"] == 50 and counts["train_100.tsv"] == 350
    assert counts["train_10.tsv"] == 35 and counts["train_1.tsv"] == 3
    full = read_lines(tmp_path / "out" / "train_100.tsv")
    ten, one = read_lines(tmp_path / "out" / "train_10.tsv"), read_lines(tmp_path / "out" / "train_1.tsv")
    assert set(one) <= set(ten) <= set(full)
    assert all(line.count("\t") == 1 and not line.split("\t")[0].endswith(" ") for line in full)
    assert read_lines(tmp_path / "out" / "pretrain_valid.txt") == [
        r.split("\t")[0] for r in read_lines(tmp_path / "out" / "select.tsv")
    ]


def test_autoencoder_prepare_holds_out_whole_sentences_with_their_phrases():
    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    from prepare import hold_out_sentences

    train = [
        ("a b c d", "1"),  # sentence: its phrases below go with it unless a kept sentence has them
        ("c d", "1"),
        ("b c", "0"),
        ("a b", "1"),  # also inside "a b x", a kept sentence: stays in training
        ("a b x", "0"),
        ("e f g", "1"),
        ("e f", "1"),
        ("a b c d", "1"),  # a duplicate of the held-out sentence is dropped too
    ]
    held, dropped = hold_out_sentences(train, [0, 5, 4, 1, 2, 3, 6, 7], held_out=1)
    assert held == [0]
    assert dropped == {1, 2, 7}
    held, dropped = hold_out_sentences(train, [5, 0, 4, 1, 2, 3, 6, 7], held_out=2)
    assert held == [5, 0] and dropped == {6, 1, 2, 7}
    with pytest.raises(SystemExit, match="only 3 whole training sentences"):
        hold_out_sentences(train, list(range(8)), held_out=4)


def test_heldout_phrases_are_the_training_items_prepare_left_out(tmp_path):
    import gzip

    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    from heldout_phrases import heldout_phrases

    (tmp_path / "sst2").mkdir()
    rows = ["a fine film . \t1", "fine film \t1", "a dull plot . \t0", "dull plot \t0", "dull \t0", "plot \t1"]
    with gzip.open(tmp_path / "sst2" / "train.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("sentence\tlabel\n" + "".join(row + "\n" for row in rows))  # SST-2's trailing spaces
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "select.tsv").write_text("a dull plot .\t0\n")
    (tmp_path / "out" / "train_100.tsv").write_text("a fine film .\t1\nfine film\t1\nplot\t1\n")
    assert heldout_phrases(tmp_path / "sst2", tmp_path / "out") == [("dull plot", "0"), ("dull", "0")]


def test_more_text_brings_lines_into_sst2_form(tmp_path):
    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    from more_text import sst_form

    assert sst_form("It's awesome, isn't it? (Yes.)") == "it 's awesome , is n't it ? ( yes . )"
    assert sst_form("  it 's a charming film .  ") == "it 's a charming film ."  # SST-2's own lines stay
    sst, other = tmp_path / "sst.txt", tmp_path / "other.txt"
    sst.write_text("a fine film .\n\n")
    other.write_text("A fine film.\nTwo dogs run.\n")
    run_script("recipes/autoencoder/more_text.py", "--out", str(tmp_path / "more.txt"), str(sst), str(other))
    assert read_lines(tmp_path / "more.txt") == ["a fine film .", "two dogs run ."]


def test_autoencoder_recipe_metrics():
    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    import numpy as np
    from anomaly import roc_auc
    from common import reconstruction_metrics

    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5
    m = reconstruction_metrics(["a b c", "a x", "q"], ["a b c", "a b c", "q"])
    assert m["exact_match"] == pytest.approx(200 / 3) and m["token_accuracy"] == pytest.approx(100 * 5 / 7)


def test_label_fractions_small_run(tmp_path):
    """prepare -> a tiny autoencoder -> the three regimes at one fraction, one seed."""
    sys.path.insert(0, str(ROOT / "recipes" / "autoencoder"))
    from prepare import prepare

    prepare(fake_sst2(tmp_path / "sst2", n=600), tmp_path / "data", held_out=50, select_min_words=0, select="items")
    small = ["model.d_model=32", "model.context_dim=32", "train.max_tokens=512", "train.precision=fp32"]
    ae = tmp_path / "ae"
    run_script(
        "-m",
        "seq2seq",
        "pretrain",
        "recipes/autoencoder/sst2_dae.yaml",
        "--set",
        f"data.path={tmp_path / 'data'}",
        "--set",
        f"train.output_dir={ae}",
        "--set",
        "train.max_steps=20",
        "--set",
        "train.valid_every=20",
        "--set",
        "tokenizer.vocab_size=40",
        "--set",
        "tokenizer.model_type=word",
        "--set",
        "train.progress=false",
        *[x for s in small for x in ("--set", s)],
    )
    extra = [x for s in small for x in ("--set", s)]
    result = run_script(
        "recipes/autoencoder/label_fractions.py",
        "--autoencoder",
        str(ae / "best"),
        "--data",
        str(tmp_path / "data"),
        "--output",
        str(tmp_path / "cls"),
        "--percents",
        "10",
        "--updates",
        "10",
        "--seeds",
        "1",
        *extra,
    )
    rows = json.loads((tmp_path / "cls" / "label_fractions.json").read_text())
    assert {r["regime"] for r in rows} == {"scratch", "frozen", "fine-tuned"}
    assert all(0 <= r["dev_accuracy"] <= 100 and 0 <= r["select_accuracy"] <= 100 for r in rows)
    assert "| 10% |" in result.stdout
