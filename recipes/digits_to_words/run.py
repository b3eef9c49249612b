"""Digits -> words: generate data with num2words, train, report exact match per stratum.

    python recipes/digits_to_words/run.py --lang en            # or --lang ko
    echo 4021 | seq2seq translate --checkpoint runs/digits_to_words/en/best

Inputs are numerals (up to 13 integer digits, a sign, up to 4 decimals) in the canonical form
of ``data.normalize: numerals`` (``1,000`` -> ``1000``, ``007`` -> ``7``), tokenized one
character per digit; targets are num2words' spelling, verbatim (words for English, characters
for Korean). The training data is a mixture that covers round numbers, runs of zeros, repeated
digits, negatives and decimals (see number_data.py). The test numerals never occur in training
(except every integer below 1,000, tested as a stratum of its own). Prints exact match for every
stratum (length, zero structure, sign, decimals) and overall, and writes ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

from number_data import strata, write_splits

from seq2seq.config import load_config
from seq2seq.data.textio import read_lines
from seq2seq.errors import Seq2SeqError
from seq2seq.infer.translator import Translator
from seq2seq.train.trainer import Trainer

HERE = Path(__file__).resolve().parent
# What a user types, beyond the test set: the examples of the issue that started this recipe.
EVERYDAY = [
    "1000000",
    "700000",
    "500000000",
    "1000000000",
    "12345678901",
    "007",
    "1,000",
    "-5",
    "3.14",
    "1000000000000",
    "0",
    "abc",
]


def stratum_table(sources: list[str], hyps: list[str], references: list[str]) -> list[dict]:
    """Exact match per stratum (see number_data.strata), sorted by family, then overall."""
    totals: dict[str, int] = defaultdict(int)
    wrong: dict[str, list[int]] = defaultdict(list)
    for i, (source, hyp, ref) in enumerate(zip(sources, hyps, references)):
        for name in strata(source):
            totals[name] += 1
            if hyp != ref:
                wrong[name].append(i)
    rows = [
        {
            "stratum": name,
            "numbers": totals[name],
            "errors": len(wrong[name]),
            "exact_match": 100.0 * (totals[name] - len(wrong[name])) / totals[name],
        }
        for name in sorted(totals)
    ]
    errors = sum(h != r for h, r in zip(hyps, references))
    rows.append(
        {
            "stratum": "overall",
            "numbers": len(sources),
            "errors": errors,
            "exact_match": 100.0 * (len(sources) - errors) / max(1, len(sources)),
        }
    )
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| stratum | numbers | errors | exact match |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['stratum']} | {r['numbers']} | {r['errors']} | {r['exact_match']:.2f}% |" for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    out = Path(args.output or f"runs/digits_to_words/{args.lang}")
    data_dir = out / "data"
    sizes = {"train": args.train_size, "valid": args.valid_size, "test": args.test_size}
    stamp = {"lang": args.lang, "sizes": sizes, "seed": args.data_seed, "version": 2}
    stamp_file = data_dir / "data.json"
    if not stamp_file.is_file() or json.loads(stamp_file.read_text(encoding="utf-8")) != stamp:
        started = time.time()
        write_splits(data_dir, args.lang, sizes, seed=args.data_seed)
        stamp_file.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
        logging.info("data written to %s in %.0f s", data_dir, time.time() - started)

    overrides = [
        f"data.path={data_dir}",
        f"train.output_dir={out}",
        # English targets are words (73 distinct), Korean targets are syllables.
        f"tokenizer.model_type={'word' if args.lang == 'en' else 'char'}",
        *args.set,
    ]
    cfg = load_config(args.config, overrides)
    run_dir = Path(cfg.train.output_dir)  # --set train.output_dir=DIR moves the run, and the evaluation with it
    result = None if args.eval_only else Trainer(cfg, resume=args.resume).fit()

    pairs = [line.split("\t") for line in read_lines(data_dir / "test.tsv")]
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    translator = Translator.from_checkpoint(run_dir / "best", device=cfg.train.device)
    started = time.time()
    hyps = translator.translate(sources, beam=args.beam)
    decode_seconds = time.time() - started
    rows = stratum_table(sources, hyps, references)
    weakest = min(rows, key=lambda r: (r["exact_match"], -r["numbers"]))
    overall = rows[-1]

    print(f"\nexact match on {len(sources)} held-out numbers, by stratum:\n")
    print(format_table(rows))
    print(
        f"\noverall {overall['exact_match']:.2f}% ({overall['errors']} errors); weakest stratum: "
        f"{weakest['stratum']}, {weakest['exact_match']:.2f}%"
    )
    wrong = [(s, h, r) for s, h, r in zip(sources, hyps, references) if h != r]
    for s, h, r in wrong[:10]:
        print(f"  {s}: got '{h}', expected '{r}'")
    print("\neveryday inputs (normalized as translate does; 'abc' is reported as unreadable):")
    everyday = translator.translate(EVERYDAY, beam=args.beam)
    for text, hyp in zip(EVERYDAY, everyday):
        print(f"  {text:>15} -> {hyp}")
    results_file = run_dir / "results.json"
    previous = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
    results = {
        "lang": args.lang,
        "config": args.config,
        "exact_match": round(overall["exact_match"], 3),
        "errors": overall["errors"],
        "test_numbers": len(sources),
        "strata": rows,
        "weakest_stratum": weakest["stratum"],
        "errors_examples": [{"source": s, "output": h, "reference": r} for s, h, r in wrong[:50]],
        "train_size": args.train_size,
        "train_seconds": round(result.seconds, 1) if result else previous.get("train_seconds"),
        "updates": result.steps if result else previous.get("updates"),
        "decode_seconds": round(decode_seconds, 1),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "beam": args.beam,
    }
    results_file.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\ntry it: echo 4021 | seq2seq translate --checkpoint {run_dir / 'best'}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["en", "ko"], default="en", help="language of the words (num2words)")
    parser.add_argument("--config", default=str(HERE / "gru.yaml"), help="model/training config")
    parser.add_argument("--output", default=None, help="run directory (default: runs/digits_to_words/LANG)")
    parser.add_argument(
        "--train-size",
        type=int,
        default=200000,
        help="numerals from the mixture (every integer below 1,000 comes on top)",
    )
    parser.add_argument("--valid-size", type=int, default=2000)
    parser.add_argument(
        "--test-size",
        type=int,
        default=13000,
        help="held-out numerals from the mixture (every integer below 1,000 comes on top)",
    )
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--beam", type=int, default=1, help="beam size for the test set")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the run's best/ checkpoint, no training "
        "(e.g. one trained elsewhere and copied into the run directory)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    try:
        run(args)
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
