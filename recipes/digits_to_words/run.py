"""Digits -> words: generate data with num2words, train, report exact match on held-out numbers.

    python recipes/digits_to_words/run.py --lang en            # or --lang ko
    echo 4021 | seq2seq translate --checkpoint runs/digits_to_words/en/best

Inputs are numerals tokenized one character per digit; targets are num2words' spelling,
verbatim (word pieces for English, characters for Korean). The test numbers never occur
in training. Prints exact-match accuracy and the remaining errors grouped by length.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from number_data import write_splits

from seq2seq.config import load_config
from seq2seq.data.textio import read_lines
from seq2seq.errors import Seq2SeqError
from seq2seq.infer.translator import Translator
from seq2seq.train.trainer import Trainer

HERE = Path(__file__).resolve().parent


def run(args: argparse.Namespace) -> dict:
    out = Path(args.output or f"runs/digits_to_words/{args.lang}")
    data_dir = out / "data"
    sizes = {"train": args.train_size, "valid": args.valid_size, "test": args.test_size}
    write_splits(data_dir, args.lang, sizes, seed=args.data_seed)

    overrides = [
        f"data.path={data_dir}",
        f"train.output_dir={out}",
        # English targets are words (73 distinct), Korean targets are syllables.
        f"tokenizer.model_type={'word' if args.lang == 'en' else 'char'}",
        *args.set,
    ]
    cfg = load_config(args.config, overrides)
    result = Trainer(cfg, resume=args.resume).fit()

    pairs = [line.split("\t") for line in read_lines(data_dir / "test.tsv")]
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    translator = Translator.from_checkpoint(out / "best", device=cfg.train.device)
    started = time.time()
    hyps = translator.translate(sources, beam=args.beam)
    decode_seconds = time.time() - started
    wrong = [(s, h, r) for s, h, r in zip(sources, hyps, references) if h != r]
    accuracy = 100.0 * (len(sources) - len(wrong)) / len(sources)
    by_length = Counter(len(s) for s, _, _ in wrong)
    total_by_length = Counter(len(s) for s in sources)

    print(f"\nexact match on {len(sources)} held-out numbers: {accuracy:.2f}% ({len(wrong)} errors)")
    print("errors by number of digits: " + ", ".join(
        f"{d}: {by_length[d]}/{total_by_length[d]}" for d in sorted(total_by_length)))
    for s, h, r in wrong[:10]:
        print(f"  {s}: got '{h}', expected '{r}'")
    results = {
        "lang": args.lang,
        "config": args.config,
        "exact_match": round(accuracy, 3),
        "errors": len(wrong),
        "test_numbers": len(sources),
        "errors_by_digits": {str(d): by_length[d] for d in sorted(total_by_length)},
        "train_size": args.train_size,
        "train_seconds": round(result.seconds, 1),
        "updates": result.steps,
        "decode_seconds": round(decode_seconds, 1),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "beam": args.beam,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\ntry it: echo 4021 | seq2seq translate --checkpoint {out / 'best'}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["en", "ko"], default="en", help="language of the words (num2words)")
    parser.add_argument("--config", default=str(HERE / "gru.yaml"), help="model/training config")
    parser.add_argument("--output", default=None, help="run directory (default: runs/digits_to_words/LANG)")
    parser.add_argument("--train-size", type=int, default=50000)
    parser.add_argument("--valid-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=10000)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--beam", type=int, default=1, help="beam size for the test set")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        run(args)
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
