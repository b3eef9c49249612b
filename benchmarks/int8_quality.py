"""What ``--quantize int8`` costs in BLEU and gains in speed, on trained checkpoints.

    python benchmarks/int8_quality.py --src test2016.de --ref test2016.en \\
        runs/multi30k/transformer/best runs/multi30k/gru_bahdanau/best

For each checkpoint: test-set BLEU (sacreBLEU, detokenized) and decoding time with beam 5,
in fp32 and with int8 dynamic quantization, in one process (model load excluded).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import sacrebleu
    import torch

    from seq2seq.infer.translator import Translator

    torch.set_num_threads(args.threads)
    src = args.src.read_text(encoding="utf-8").splitlines()
    ref = args.ref.read_text(encoding="utf-8").splitlines()
    print("| checkpoint | weights | BLEU | decode s | sent/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for ckpt in args.checkpoints:
        base = None
        for quantize in (None, "int8"):
            translator = Translator.from_checkpoint(ckpt, device="cpu", quantize=quantize)
            translator.translate(src[:16], beam=args.beam)  # warm-up
            start = time.perf_counter()
            hyps = translator.translate(src, beam=args.beam)
            seconds = time.perf_counter() - start
            base = base or seconds
            score = sacrebleu.corpus_bleu(hyps, [ref]).score
            print(f"| {ckpt} | {quantize or 'fp32'} | {score:.2f} | {seconds:.2f} | {len(src) / seconds:.1f} | "
                  f"{base / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
