"""Staged versus end-to-end training on digits -> words, over training-set sizes and seeds.

    python recipes/staged_vs_end2end/run.py                   # the full sweep (see README)
    python recipes/staged_vs_end2end/run.py --sizes 500 2000 --seeds 1 2 --updates 600

One architecture (gru.yaml: BiGRU -> 99-dim interface vector -> GRU, no attention), three
regimes, each given the same number of updates:

  end-to-end            digits -> words, all ``--updates`` updates jointly;
  staged                encoder: digits -> place-value vector (9 one-hot blocks of 11, cross-
                        entropy), half the updates; decoder: place-value vector -> words, the
                        other half; then joined (``seq2seq join``) with no further training;
  staged + fine-tuning  a quarter of the updates for each stage, then the joined model trained
                        end-to-end for the remaining half.

Every size's training set is a prefix of one pool of numbers, so larger sets contain the
smaller ones; validation and test numbers are never in the pool. Writes ``results.json``,
``results.md`` (exact match, mean +- std over seeds, training time) and ``results.png``
(accuracy against training-set size, one line per regime) under ``--output``. Cells already
finished (their ``cell.json`` exists) are not run again, so an interrupted sweep continues.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "digits_to_words"))

from number_data import balance_lengths, place_value_vectors, sample_numbers, spell  # noqa: E402

from seq2seq.checkpoint import join_checkpoints  # noqa: E402
from seq2seq.config import load_config  # noqa: E402
from seq2seq.data.textio import read_lines  # noqa: E402
from seq2seq.errors import Seq2SeqError  # noqa: E402
from seq2seq.infer.translator import Translator  # noqa: E402
from seq2seq.plots import pyplot  # noqa: E402
from seq2seq.train.trainer import Trainer  # noqa: E402

REGIMES = ("end-to-end", "staged", "staged + fine-tuning")


# ------------------------------------------------------------------------------------ data
def write_split(path: Path, numbers: list[int], lang: str) -> None:
    """``digits<TAB>words`` lines and the matching place-value vectors (``.context.npy``)."""
    numerals = [str(n) for n in numbers]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{d}\t{spell(n, lang)}\n" for d, n in zip(numerals, numbers)), encoding="utf-8")
    tmp.replace(path)
    np.save(path.with_suffix(".context.npy"), place_value_vectors(numerals))


def make_data(
    root: Path, lang: str, sizes: list[int], valid: int, test: int, seed: int, pool_size: int = 0
) -> dict[int, Path]:
    """One data directory per training-set size; all share the validation and test numbers.

    The training pool holds ``pool_size`` numbers (default: the largest size); validation and
    test numbers come after it, so sweeps with the same pool size share them.
    """
    largest = max(pool_size, *sizes)
    pool = sample_numbers(largest + valid + test, seed)
    train_pool, valid_numbers, test_numbers = pool[:largest], pool[largest : largest + valid], pool[largest + valid :]
    dirs = {}
    for size in sizes:
        d = root / "data" / str(size)
        if not (d / "test.tsv").is_file():
            d.mkdir(parents=True, exist_ok=True)
            write_split(d / "train.tsv", balance_lengths(train_pool[:size]), lang)
            write_split(d / "valid.tsv", valid_numbers, lang)
            write_split(d / "test.tsv", test_numbers, lang)
        dirs[size] = d
    return dirs


# ------------------------------------------------------------------------------------ runs
def train(config: str, data_dir: Path, out: Path, updates: int, threads: int, *overrides: str) -> float:
    """Train for ``updates`` updates (validating 4 times); returns the training seconds."""
    log = out / "train_log.jsonl"
    ended = [r for r in map(json.loads, log.read_text().splitlines()) if r["event"] == "end"] if log.is_file() else []
    if ended:  # finished before the sweep was interrupted
        return ended[-1]["seconds"]
    if out.exists():
        shutil.rmtree(out)  # a half-finished run: start it again
    cfg = load_config(
        config,
        [
            f"data.path={data_dir}",
            f"train.output_dir={out}",
            f"train.max_steps={updates}",
            f"train.valid_every={max(1, updates // 4)}",
            f"train.threads={threads}",
            *overrides,
        ],
    )
    return Trainer(cfg).fit().seconds


def exact_match(checkpoint: Path, sources: list[str], references: list[str]) -> float:
    hyps = Translator.from_checkpoint(checkpoint, device="cpu").translate(sources, beam=1)
    return 100.0 * sum(h == r for h, r in zip(hyps, references)) / len(references)


def context_accuracy(run_dir: Path) -> float:
    """The encoder stage's validation context accuracy (all 9 places right) at its best loss."""
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["event"] == "valid"]
    return min(valid, key=lambda r: r["valid_loss"])["valid_context_accuracy"]


def run_cell(
    config: str, data_dir: Path, out: Path, updates: int, seed: int, threads: int, extra: tuple[str, ...] = ()
) -> dict:
    """The three regimes for one training-set size and seed."""
    done = out / "cell.json"
    if done.is_file():
        result = json.loads(done.read_text())
        result["staged"].setdefault("encoder_context_accuracy", context_accuracy(out / "encoder"))
        return result
    pairs = [line.split("\t") for line in read_lines(data_dir / "test.tsv")]
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    common = (f"train.seed={seed}", *extra)
    joint = ("train.stage=joint", "train.early_stop_metric=exact_match")
    result = {}

    seconds = train(config, data_dir, out / "end2end", updates, threads, *common, *joint)
    result["end-to-end"] = {
        "exact_match": exact_match(out / "end2end" / "best", sources, references),
        "seconds": seconds,
    }

    half = max(1, updates // 2)
    seconds = train(config, data_dir, out / "encoder", half, threads, *common, "train.stage=encoder")
    seconds += train(config, data_dir, out / "decoder", half, threads, *common, "train.stage=decoder")
    join_checkpoints(out / "encoder" / "best", out / "decoder" / "best", out / "staged")
    result["staged"] = {
        "exact_match": exact_match(out / "staged", sources, references),
        "seconds": seconds,
        "encoder_context_accuracy": context_accuracy(out / "encoder"),
    }

    quarter = max(1, updates // 4)
    seconds = train(config, data_dir, out / "encoder_q", quarter, threads, *common, "train.stage=encoder")
    seconds += train(config, data_dir, out / "decoder_q", quarter, threads, *common, "train.stage=decoder")
    seconds += train(
        config,
        data_dir,
        out / "finetune",
        updates - 2 * quarter,
        threads,
        *common,
        *joint,
        f"train.init_encoder={out / 'encoder_q' / 'best'}",
        f"train.init_decoder={out / 'decoder_q' / 'best'}",
    )
    result["staged + fine-tuning"] = {
        "exact_match": exact_match(out / "finetune" / "best", sources, references),
        "seconds": seconds,
    }
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _worker(task: tuple) -> tuple[int, int, dict]:
    config, data_dir, out, updates, seed, threads, size, extra = task
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)
    return size, seed, run_cell(config, data_dir, out, updates, seed, threads, extra)


# ------------------------------------------------------------------------------------ report
def summarise(cells: dict[int, dict[int, dict]]) -> list[dict]:
    rows = []
    for size in sorted(cells):
        for regime in REGIMES:
            scores = [cells[size][s][regime]["exact_match"] for s in sorted(cells[size])]
            seconds = [cells[size][s][regime]["seconds"] for s in sorted(cells[size])]
            context = [cells[size][s][regime].get("encoder_context_accuracy") for s in sorted(cells[size])]
            rows.append(
                {
                    "train_size": size,
                    "regime": regime,
                    "seeds": len(scores),
                    "scores": scores,
                    "encoder_context_accuracy": statistics.mean(context) if None not in context else None,
                    "mean": statistics.mean(scores),
                    "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "seconds": statistics.mean(seconds),
                }
            )
    return rows


def write_table(rows: list[dict], path: Path, header: str) -> str:
    lines = [
        header,
        "",
        "| training numbers | regime | exact match % (mean ± std) | per seed | training time "
        "| staged encoder alone: all 9 places right (valid) |",
        "| ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        per_seed = ", ".join(f"{s:.1f}" for s in r["scores"])
        context = f"{r['encoder_context_accuracy']:.1f}%" if r["encoder_context_accuracy"] is not None else ""
        lines.append(
            f"| {r['train_size']:,} | {r['regime']} | {r['mean']:.2f} ± {r['std']:.2f} | {per_seed} "
            f"| {r['seconds']:.0f} s | {context} |"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def write_plot(rows: list[dict], path: Path, title: str) -> bool:
    try:
        plt = pyplot("the plot")
    except Seq2SeqError as e:
        print(f"{e}: no plot written", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for regime, marker in zip(REGIMES, "osD"):
        mine = [r for r in rows if r["regime"] == regime]
        ax.errorbar(
            [r["train_size"] for r in mine],
            [r["mean"] for r in mine],
            yerr=[r["std"] for r in mine],
            marker=marker,
            capsize=3,
            label=regime,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training numbers")
    ax.set_ylabel("exact match on held-out numbers (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["en", "ko"], default="en")
    parser.add_argument("--config", default=str(HERE / "gru.yaml"))
    parser.add_argument("--output", default="runs/staged_vs_end2end")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 20000, 200000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--updates", type=int, default=1200, help="updates per regime (same for all)")
    parser.add_argument("--valid-size", type=int, default=500)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=0,
        help="training pool (default: the largest size); give 200000 to reuse the default "
        "sweep's test numbers with fewer sizes",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="cells trained in parallel (default: CPU cores, at most 4)",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per cell (default: cores / jobs)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run, e.g. --set model.d_model=64",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.output) / args.lang
    started = time.time()
    try:
        dirs = make_data(root, args.lang, args.sizes, args.valid_size, args.test_size, args.data_seed, args.pool_size)
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        tasks = [
            (
                args.config,
                dirs[size],
                root / str(size) / f"seed{seed}",
                args.updates,
                seed,
                threads,
                size,
                tuple(args.set),
            )
            for size in args.sizes
            for seed in args.seeds
        ]
        cells: dict[int, dict[int, dict]] = {}
        if args.jobs == 1:
            results = map(_worker, tasks)
        else:
            pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_worker, tasks)
        for size, seed, cell in results:
            cells.setdefault(size, {})[seed] = cell
            print(
                f"size {size:>7,} seed {seed}: "
                + ", ".join(f"{regime} {cell[regime]['exact_match']:.1f}%" for regime in REGIMES),
                flush=True,
            )
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = summarise(cells)
    header = (
        f"Digits -> words ({args.lang}), {args.updates} updates per regime, "
        f"{args.test_size:,} held-out test numbers, seeds {' '.join(map(str, args.seeds))}"
    )
    (root / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    print("\n" + write_table(rows, root / "results.md", header))
    title = (
        f"digits → words ({args.lang}), {args.updates} updates per regime\n"
        f"{args.test_size:,} held-out numbers, mean ± std over {len(args.seeds)} seeds"
    )
    if write_plot(rows, root / "results.png", title):
        print(f"plot: {root / 'results.png'}")
    print(f"total wall time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
