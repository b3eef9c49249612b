"""Digit images read aloud: end-to-end, staged through the digit each image shows, staged + fine-tuned.

    python recipes/digit_images/run.py                                  # both tasks, 3 seeds
    python recipes/digit_images/run.py --tasks single --seeds 1 --updates 200   # a quick look

Tasks (scikit-learn's 8x8 handwritten digits, split *by image*: no test image is ever trained on):

  single    one image -> its English word (``4`` -> ``four``)
  sequence  2..9 images -> the number they spell, in Korean and in English
            (``4 0 2 1`` -> ``사천이십일`` / ``four thousand and twenty-one``)

One architecture for every regime (``ItemClassSeq2Seq``): a small CNN per image -> a
10-way digit head per image -> the interface vector (one block of 11 per decimal place, units
first, class 10 = no digit: the text staged study's place-value vector) -> a GRU decoder without
attention, so the interface is the only path from pixels to words. Each regime gets the same
number of updates on the same batches' data:

  end-to-end            images -> words, all ``--updates`` updates;
  staged                encoder: each image -> its digit (cross-entropy), half the updates;
                        decoder: one-hot place-value vector -> words, the other half; joined as is;
  staged + fine-tuning  a quarter for each stage, then images -> words for the remaining half.

The loop is this file's own, over the toolkit's model parts (``seq2seq/models/vision.py``), so
that every regime gets exactly the same updates; ``config.yaml`` beside it trains an image model
with ``seq2seq train`` instead (docs/images.md). Writes
``results.json``, ``results.md`` and ``results.png`` under ``--output``; ``--plot-from`` redraws the
plot from earlier runs' results without training.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "digits_to_words"))

from number_data import place_value_vectors, sample_numeral, spell, strata  # noqa: E402

from seq2seq.data import images as image_data  # noqa: E402
from seq2seq.errors import Seq2SeqError  # noqa: E402
from seq2seq.models import GRUDecoder  # noqa: E402
from seq2seq.models.vision import ItemClassSeq2Seq, VisionEncoder, item_cross_entropy  # noqa: E402
from seq2seq.plots import pyplot  # noqa: E402

REGIMES = ("end-to-end", "staged", "staged + fine-tuning")
PAD, BOS, EOS = 0, 1, 2
MAX_ITEMS = 9


# ------------------------------------------------------------------------------------ targets
def tokenize(text: str, lang: str) -> list[str]:
    """English: words, with '-' and ',' as tokens of their own; Korean: characters."""
    if lang == "ko":
        return list(text)
    return text.replace("-", " - ").replace(",", " ,").split()


def detokenize(tokens: list[str], lang: str) -> str:
    if lang == "ko":
        return "".join(tokens)
    return " ".join(tokens).replace(" - ", "-").replace(" ,", ",")


class Vocab:
    """Target tokens <-> ids (0 pad, 1 bos, 2 eos), built from every spelling the task can need."""

    def __init__(self, texts: list[str], lang: str) -> None:
        self.lang = lang
        tokens = sorted({t for text in texts for t in tokenize(text, lang)})
        self.itos = ["<pad>", "<s>", "</s>", *tokens]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def encode(self, texts: list[str]) -> torch.Tensor:
        """-> (B, T) ids: BOS, the tokens, EOS, padding."""
        rows = [[BOS] + [self.stoi[t] for t in tokenize(text, self.lang)] + [EOS] for text in texts]
        out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def decode(self, ids: list[int]) -> str:
        return detokenize([self.itos[i] for i in ids if i > EOS], self.lang)


# ------------------------------------------------------------------------------------ data
def integer_numerals(count: int, rng: random.Random, lengths: tuple[int, int], exclude: set[str]) -> list[str]:
    """``count`` distinct non-negative integers of ``lengths`` digits from the digits recipe's
    mixture (round numbers, runs of zeros, repeated digits; lengths equally likely)."""
    out: list[str] = []
    seen = set(exclude)
    while len(out) < count:
        n = sample_numeral(rng)
        if n.isdigit() and lengths[0] <= len(n) <= lengths[1] and n not in seen:
            seen.add(n)
            out.append(n)
    return out


def make_numerals(task: str, args: argparse.Namespace) -> dict[str, list[str]]:
    """Train / valid / test numerals. ``single``: the ten digits everywhere (only the images
    differ). ``sequence``: every 2- and 3-digit number is in training and tested again as its own
    stratum (on test images; ``--every-below``); the other valid and test numbers are never in training."""
    if task == "single":
        digits = [str(d) for d in range(10)]
        return {"train": digits, "valid": digits, "test": digits}
    rng = random.Random(args.data_seed)
    small = [str(n) for n in range(10, args.every_below)]
    held = integer_numerals(args.valid_size + args.test_size, rng, (2, MAX_ITEMS), set(small))
    train = small + integer_numerals(args.pool_size, rng, (2, MAX_ITEMS), set(small) | set(held))
    return {"train": train, "valid": held[: args.valid_size], "test": held[args.valid_size :] + small}


class Split:
    """Numerals with a fixed image drawn for each digit (validation and test)."""

    def __init__(self, numerals: list[str], images: np.ndarray, pool: dict, seed: int, repeat: int = 1) -> None:
        self.numerals = numerals * repeat
        x, mask, digits = image_data.compose(self.numerals, images, pool, np.random.default_rng(seed))
        self.x, self.mask, self.digits = torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(digits)


def single_test(labels: np.ndarray, idx: np.ndarray, images: np.ndarray) -> Split:
    """Every test image once, as a one-image numeral."""
    split = Split.__new__(Split)
    split.numerals = [str(int(labels[i])) for i in idx]
    split.x = torch.from_numpy(images[idx]).unsqueeze(1)
    split.mask = torch.ones(len(idx), 1, dtype=torch.bool)
    split.digits = torch.from_numpy(labels[idx]).unsqueeze(1)
    return split


# ------------------------------------------------------------------------------------ model
def build(vocab_size: int, blocks: int, args: argparse.Namespace) -> ItemClassSeq2Seq:
    encoder = VisionEncoder((8, 8), args.d_image, item="cnn", context_dim=args.d, channels=(16, 32))
    decoder = GRUDecoder(vocab_size, args.d, attention="none", context_dim=args.d, dropout=0.1)
    return ItemClassSeq2Seq(encoder, decoder, classes=10, blocks=blocks)


@torch.no_grad()
def greedy(model: ItemClassSeq2Seq, encoded, max_len: int) -> list[list[int]]:
    """Greedy decoding through ``decoder.init_state``/``step`` -> token ids per row, up to EOS."""
    state = model.decoder.init_state(encoded)
    tokens = torch.full((encoded.context.size(0),), BOS, dtype=torch.long)
    steps = []
    for _ in range(max_len):
        logits, state = model.decoder.step(tokens, encoded, state)
        tokens = logits.argmax(-1)
        steps.append(tokens)
        if torch.stack(steps, 1).eq(EOS).any(1).all():
            break
    rows = torch.stack(steps, 1).tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in rows]


@torch.no_grad()
def translate(model: ItemClassSeq2Seq, split: Split, vocab: Vocab, max_len: int, batch: int = 500) -> list[str]:
    model.eval()
    hyps: list[str] = []
    for i in range(0, len(split.numerals), batch):
        encoded = model.encode(split.x[i : i + batch], split.mask[i : i + batch])
        hyps += [vocab.decode(ids) for ids in greedy(model, encoded, max_len)]
    return hyps


@torch.no_grad()
def item_accuracy(model: ItemClassSeq2Seq, split: Split) -> float:
    """Share of validation images whose digit the encoder's head gets right."""
    model.eval()
    logits = model.item_logits(model.encoder(split.x, split.mask))
    return float(logits.argmax(-1)[split.mask].eq(split.digits[split.mask]).float().mean())


# ------------------------------------------------------------------------------------ training
def train_phase(
    model: ItemClassSeq2Seq,
    phase: str,
    updates: int,
    next_batch: Callable[[], tuple],
    score: Callable[[], float],
    args: argparse.Namespace,
) -> float:
    """``updates`` Adam updates of one phase (``joint``, ``encoder`` or ``decoder``), scored
    ``--evals`` times; the best-scoring weights are kept. Returns the best score."""
    if updates <= 0:
        return score()
    params = {
        "joint": list(model.parameters()),
        "encoder": list(model.encoder.parameters()) + list(model.context_head.parameters()),
        "decoder": list(model.context_input.parameters()) + list(model.decoder.parameters()),
    }[phase]
    opt = torch.optim.Adam(params, lr=args.lr)
    every = max(1, updates // args.evals)
    best, best_state = float("-inf"), None
    for step in range(1, updates + 1):
        model.train()
        x, mask, digits, tgt, vectors = next_batch()
        if phase == "encoder":
            loss = item_cross_entropy(model.item_logits(model.encoder(x, mask)), mask, digits)
        else:
            encoded = model.from_interface(vectors) if phase == "decoder" else model.encode(x, mask)
            logits = model.decoder(tgt[:, :-1], encoded)
            loss = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % every == 0 or step == updates:
            current = score()
            if current > best:
                best, best_state = current, copy.deepcopy(model.state_dict())
    assert best_state is not None
    model.load_state_dict(best_state)
    return best


def exact_match(hyps: list[str], refs: list[str]) -> float:
    return 100.0 * sum(h == r for h, r in zip(hyps, refs)) / max(1, len(refs))


def stratified(numerals: list[str], hyps: list[str], refs: list[str], task: str) -> dict[str, list[int]]:
    """stratum -> [correct, total]; the text recipe's strata (sign and form are constant here
    and left out), or the digit shown for one image."""
    table: dict[str, list[int]] = {}
    for n, h, r in zip(numerals, hyps, refs):
        names = [f"digit {n}"] if task == "single" else [s for s in strata(n) if not s.startswith(("sign", "form"))]
        for name in ["overall", *names]:
            cell = table.setdefault(name, [0, 0])
            cell[0] += h == r
            cell[1] += 1
    return table


class Cell:
    """One task, language, training-set size and seed: the data every regime shares."""

    def __init__(self, task: str, lang: str, size: int, seed: int, data: dict, args: argparse.Namespace) -> None:
        images, labels, split = data["images"], data["labels"], data["split"]
        train_idx = split["train"]
        if size:  # the first `size` training images of each class (the same for every seed)
            train_idx = np.concatenate([train_idx[labels[train_idx] == c][:size] for c in range(10)])
        self.task, self.lang, self.seed, self.args = task, lang, seed, args
        self.images, self.pool, self.train_images = images, image_data.by_label(train_idx, labels), len(train_idx)
        self.valid, self.test = data["valid"], data["test"]
        self.train_numerals = data["numerals"]["train"]
        self.train_words = [spell(n, lang) for n in self.train_numerals]
        self.valid_refs = [spell(n, lang) for n in self.valid.numerals]
        self.test_refs = [spell(n, lang) for n in self.test.numerals]
        powers = [spell(10**k, lang) for k in range(MAX_ITEMS)]
        self.vocab = Vocab(self.train_words + self.valid_refs + powers, lang)  # test words: never trained on
        self.blocks = 1 if task == "single" else MAX_ITEMS
        self.max_len = 64 if lang == "ko" else 48
        self.valid_vectors = self.vectors(self.valid.numerals)
        self.valid_tgt = self.vocab.encode(self.valid_refs)

    def vectors(self, numerals: list[str]) -> torch.Tensor:
        """The place-value interface vectors (B, blocks * 11) of ``numerals``."""
        full = torch.from_numpy(place_value_vectors(numerals)).view(-1, MAX_ITEMS, 11)
        return full[:, : self.blocks].reshape(len(numerals), self.blocks * 11)

    def batches(self, seed: int) -> Callable[[], tuple]:
        """-> next_batch(): ``--batch`` training numerals drawn with replacement, each digit a random
        training image of its class: (images, mask, digits, target ids, interface vectors)."""
        rng, pick = np.random.default_rng(seed), random.Random(seed)

        def next_batch() -> tuple:
            rows = [pick.randrange(len(self.train_numerals)) for _ in range(self.args.batch)]
            chosen = [self.train_numerals[r] for r in rows]
            x, mask, digits = image_data.compose(chosen, self.images, self.pool, rng)
            words = self.vocab.encode([self.train_words[r] for r in rows])
            return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(digits), words, self.vectors(chosen)

        return next_batch

    @torch.no_grad()
    def decoder_score(self, model: ItemClassSeq2Seq) -> float:
        """Minus the validation loss of the decoder alone, reading the true interface vectors."""
        model.eval()
        logits = model.decoder(self.valid_tgt[:, :-1], model.from_interface(self.valid_vectors))
        return -float(F.cross_entropy(logits.transpose(1, 2), self.valid_tgt[:, 1:], ignore_index=PAD))

    def run(self, regime: str) -> dict:
        args, n = self.args, self.args.updates
        torch.manual_seed(self.seed)
        model = build(len(self.vocab.itos), self.blocks, args)
        next_batch = self.batches(self.seed)

        def joint() -> float:
            return exact_match(translate(model, self.valid, self.vocab, self.max_len), self.valid_refs)

        started = time.time()
        info: dict = {}
        if regime == "end-to-end":
            train_phase(model, "joint", n, next_batch, joint, args)
        else:
            share = n // 2 if regime == "staged" else n // 4
            encoder = train_phase(model, "encoder", share, next_batch, lambda: item_accuracy(model, self.valid), args)
            info["valid_item_accuracy_after_encoder_stage"] = 100.0 * encoder
            train_phase(model, "decoder", share, next_batch, lambda: self.decoder_score(model), args)
            if regime == "staged + fine-tuning":
                train_phase(model, "joint", n - 2 * share, next_batch, joint, args)
        seconds = time.time() - started
        hyps = translate(model, self.test, self.vocab, self.max_len)
        wrong = [(n, h, r) for n, h, r in zip(self.test.numerals, hyps, self.test_refs) if h != r]
        return {
            "exact_match": exact_match(hyps, self.test_refs),
            "strata": stratified(self.test.numerals, hyps, self.test_refs, self.task),
            "seconds": seconds,
            "examples_wrong": wrong[:5],
            "test_item_accuracy": 100.0 * item_accuracy(model, self.test),
            **info,
        }


def run_cell(task: str, lang: str, size: int, seed: int, data: dict, args: argparse.Namespace) -> dict:
    """The three regimes for one task, language, training-set size and seed."""
    cell = Cell(task, lang, size, seed, data, args)
    return {"train_images": cell.train_images, **{regime: cell.run(regime) for regime in REGIMES}}


# ------------------------------------------------------------------------------------ report
def summarise(cells: list[dict]) -> list[dict]:
    rows = []
    keys = sorted({(c["task"], c["lang"], c["size"] or 0) for c in cells})
    for task, lang, size in keys:
        mine = [c for c in cells if (c["task"], c["lang"], c["size"] or 0) == (task, lang, size)]
        for regime in REGIMES:
            scores = [c["result"][regime]["exact_match"] for c in mine]
            strata_names = list(mine[0]["result"][regime]["strata"])
            per_stratum = {
                name: [
                    100.0 * c["result"][regime]["strata"][name][0] / c["result"][regime]["strata"][name][1]
                    for c in mine
                ]
                for name in strata_names
            }
            rows.append(
                {
                    "task": task,
                    "lang": lang,
                    "train_images": mine[0]["result"]["train_images"],
                    "regime": regime,
                    "seeds": [c["seed"] for c in mine],
                    "scores": scores,
                    "mean": statistics.mean(scores),
                    "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "seconds": statistics.mean(c["result"][regime]["seconds"] for c in mine),
                    "test_item_accuracy": statistics.mean(c["result"][regime]["test_item_accuracy"] for c in mine),
                    "strata": {
                        k: (
                            statistics.mean(v),
                            statistics.stdev(v) if len(v) > 1 else 0.0,
                            mine[0]["result"][regime]["strata"][k][1],
                        )
                        for k, v in per_stratum.items()
                    },
                }
            )
    return rows


def write_table(rows: list[dict], path: Path, header: str) -> str:
    lines = [
        header,
        "",
        "| task | target | training images | regime | exact match % (mean ± std) | per seed | "
        "test images' digit right % | training time |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        per_seed = ", ".join(f"{s:.1f}" for s in r["scores"])
        lines.append(
            f"| {r['task']} | {r['lang']} | {r['train_images']:,} | {r['regime']} | {r['mean']:.2f} ± {r['std']:.2f} "
            f"| {per_seed} | {r['test_item_accuracy']:.1f} | {r['seconds']:.0f} s |"
        )
    lines += ["", "Exact match % by stratum (mean ± std over seeds; test items in the stratum):", ""]
    for task, lang, size in sorted({(r["task"], r["lang"], r["train_images"]) for r in rows}):
        mine = [r for r in rows if (r["task"], r["lang"], r["train_images"]) == (task, lang, size)]
        names = list(mine[0]["strata"])
        lines += [
            f"**{task}, {lang}, {size:,} training images**",
            "",
            "| stratum | n | " + " | ".join(r["regime"] for r in mine) + " |",
            "| --- | ---: |" + " ---: |" * len(mine),
        ]
        for name in sorted(names, key=lambda s: (s != "overall", s)):
            cells = " | ".join(f"{r['strata'][name][0]:.1f} ± {r['strata'][name][1]:.1f}" for r in mine)
            lines.append(f"| {name} | {mine[0]['strata'][name][2]} | {cells} |")
        lines.append("")
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def write_plot(rows: list[dict], path: Path, title: str) -> bool:
    try:
        plt = pyplot("the plot")
    except Seq2SeqError as e:
        print(f"{e}: no plot written", file=sys.stderr)
        return False
    panels = sorted({(r["task"], r["lang"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), dpi=120, squeeze=False)
    width = 0.8 / len(REGIMES)
    for ax, (task, lang) in zip(axes[0], panels):
        sizes = sorted({r["train_images"] for r in rows if (r["task"], r["lang"]) == (task, lang)})
        for k, regime in enumerate(REGIMES):
            mine = {r["train_images"]: r for r in rows if (r["task"], r["lang"], r["regime"]) == (task, lang, regime)}
            xs = [i + (k - 1) * width for i, size in enumerate(sizes) if size in mine]
            means = [mine[size]["mean"] for size in sizes if size in mine]
            stds = [mine[size]["std"] for size in sizes if size in mine]
            ax.bar(xs, means, width, yerr=stds, capsize=3, label=regime)
        ax.set_xticks(range(len(sizes)), [f"{size:,}" for size in sizes])
        ax.set_xlabel("training images")
        ax.set_ylabel("exact match on test images (%)")
        ax.set_ylim(0, 102)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{task} → {lang}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(REGIMES), fontsize=8)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


# What must be equal for cells of another run to be summarised with this run's (--merge).
SAME = ("updates", "batch", "evals", "lr", "d", "d_image", "pool_size", "valid_size", "test_size", "every_below")
SAME += ("data_seed",)


def earlier_cells(args: argparse.Namespace) -> list[dict]:
    """The per-seed cells of the ``--merge`` results.json files (other seeds of the same settings),
    read before anything runs; a file of other settings is an error."""
    cells = []
    for path in args.merge:
        earlier = json.loads(Path(path).read_text(encoding="utf-8"))
        differ = [k for k in SAME if earlier["args"].get(k) != getattr(args, k)]
        if differ:
            raise SystemExit(f"error: {path} was run with other settings ({', '.join(differ)}); it cannot be merged")
        cells += earlier["cells"]
    return cells


def merged(cells: list[dict], earlier: list[dict]) -> list[dict]:
    """``cells`` and ``earlier`` ones, a (task, lang, size, seed) run here taking precedence, in order."""
    done = {(c["task"], c["lang"], c["size"], c["seed"]) for c in cells}
    cells = cells + [c for c in earlier if (c["task"], c["lang"], c["size"], c["seed"]) not in done]
    return sorted(cells, key=lambda c: (c["task"], c["lang"], c["size"] or 0, c["seed"]))


PRINTED = re.compile(r"^(single|sequence) (ko|en) (\d+) images seed (\d+): (.*)$")


def printed_rows(path: Path) -> list[dict]:
    """Plot rows from the per-seed lines this script prints (``single en 1078 images seed 1:
    end-to-end 95.6%, ...``): exact match only, as printed (0.1 point), for runs whose
    results.json was never written."""
    scores: dict[tuple, dict[int, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        found = PRINTED.match(line.strip())
        if not found:
            continue
        task, lang, images, seed, rest = found.groups()
        for part in rest.split(", "):
            regime, _, value = part.rpartition(" ")
            scores.setdefault((task, lang, int(images), regime), {})[int(seed)] = float(value.rstrip("%"))
    rows = []
    for (task, lang, images, regime), by_seed in sorted(scores.items()):
        values = [by_seed[s] for s in sorted(by_seed)]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(
            {"task": task, "lang": lang, "train_images": images, "regime": regime, "seeds": sorted(by_seed)}
            | {"scores": values, "mean": statistics.mean(values), "std": std}
        )
    return rows


def replot(paths: list[str], out: Path) -> int:
    """``--plot-from``: redraw results.png from earlier runs, training nothing: results.json files
    (their per-seed cells, summarised together) and logs of the printed per-seed lines."""
    cells, rows = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise SystemExit(f"error: --plot-from {path}: no such file")
        if path.suffix == ".json":
            cells = merged(json.loads(path.read_text(encoding="utf-8"))["cells"], cells)
        else:
            rows += printed_rows(path)
    rows = summarise(cells) + [r for r in rows if (r["task"], r["lang"]) not in {(c["task"], c["lang"]) for c in cells}]
    if not rows:
        raise SystemExit(f"error: --plot-from {' '.join(paths)}: no results found")
    seeds = sorted({len(r["seeds"]) for r in rows})
    title = f"mean ± std over {'/'.join(map(str, seeds))} seeds (--plot-from)"
    out.mkdir(parents=True, exist_ok=True)
    if not write_plot(rows, out / "results.png", title):
        return 2
    for r in rows:
        print(f"{r['task']} {r['lang']} {r['regime']}: {r['mean']:.2f} ± {r['std']:.2f} (seeds {r['seeds']})")
    print(f"plot: {out / 'results.png'}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=["single", "sequence"], default=["single", "sequence"])
    parser.add_argument(
        "--langs",
        nargs="+",
        choices=["ko", "en"],
        default=["ko", "en"],
        help="targets of the sequence task (single is always English)",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[0], help="training images per class (0: all, about 108)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--updates", type=int, default=400, help="updates per regime (same for all)")
    parser.add_argument("--batch", type=int, default=64, help="numerals per batch")
    parser.add_argument("--evals", type=int, default=4, help="validations per training phase")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--d", type=int, default=128, help="decoder and context size")
    parser.add_argument("--d-image", type=int, default=64, help="code size per image")
    parser.add_argument("--pool-size", type=int, default=20000, help="sequence task: training numerals")
    parser.add_argument("--valid-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=1000, help="sequence task: unseen test numerals")
    parser.add_argument(
        "--every-below",
        type=int,
        default=1000,
        help="sequence task: every number from 10 below this is trained and tested",
    )
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="runs/digit_images")
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        metavar="RESULTS_JSON",
        help="summarise with the per-seed results of earlier runs of the same settings (other seeds)",
    )
    parser.add_argument(
        "--plot-from",
        nargs="+",
        default=None,
        metavar="FILE",
        help="train nothing: redraw results.png under --output from results.json files and logs of the "
        "printed per-seed lines",
    )
    args = parser.parse_args(argv)
    if args.plot_from:
        return replot(args.plot_from, Path(args.output))
    earlier = earlier_cells(args)  # --merge: checked before anything runs
    torch.set_num_threads(args.threads)
    started = time.time()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    try:
        images, labels = image_data.load_digits()
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    split = image_data.split_by_image(labels, (0.6, 0.1, 0.3), seed=args.data_seed)
    cells = []
    for task in args.tasks:
        numerals = make_numerals(task, args)
        if task == "single":
            valid = single_test(labels, split["valid"], images)
            test = single_test(labels, split["test"], images)
        else:
            valid_pool, test_pool = (image_data.by_label(split[s], labels) for s in ("valid", "test"))
            valid = Split(numerals["valid"], images, valid_pool, args.data_seed)
            test = Split(numerals["test"], images, test_pool, args.data_seed + 1)
        data = {"images": images, "labels": labels, "split": split, "numerals": numerals, "valid": valid, "test": test}
        for lang in ["en"] if task == "single" else args.langs:
            for size in args.sizes:
                for seed in args.seeds:
                    result = run_cell(task, lang, size, seed, data, args)
                    cells.append({"task": task, "lang": lang, "size": size, "seed": seed, "result": result})
                    print(
                        f"{task} {lang} {result['train_images']} images seed {seed}: "
                        + ", ".join(f"{r} {result[r]['exact_match']:.1f}%" for r in REGIMES),
                        flush=True,
                    )
    cells = merged(cells, earlier)
    seeds = sorted({c["seed"] for c in cells})
    rows = summarise(cells)
    header = (
        f"Digit images read aloud: {args.updates} updates per regime, batches of {args.batch}, seeds "
        f"{' '.join(map(str, seeds))}; test images never trained on"
    )
    (out / "results.json").write_text(
        json.dumps({"args": vars(args), "rows": rows, "cells": cells}, indent=2, ensure_ascii=False) + "\n"
    )
    print("\n" + write_table(rows, out / "results.md", header))
    title = f"{args.updates} updates per regime, mean ± std over {len(seeds)} seed(s)"
    if write_plot(rows, out / "results.png", title):
        print(f"plot: {out / 'results.png'}")
    print(f"total wall time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
