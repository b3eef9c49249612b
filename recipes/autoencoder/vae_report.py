"""What a variational autoencoder learned, on captions it never trained on (issue 21).

Prints, for ``--lines`` (default: the Multi30k val captions that prepare_captions.py wrote):

* reconstruction NLL per token with z = mu (``Autoencoder.score``), and the ELBO's KL term per
  sentence, mean over the lines (nats);
* active units (Burda et al. 2016): dimensions d whose posterior mean varies across sentences,
  Cov_x(E[z_d | x]) > 0.01; a collapsed posterior has none;
* sentences decoded from z ~ N(0, I), and the path between the codes of two captions.

    python recipes/autoencoder/vae_report.py --checkpoint runs/autoencoder/captions/vae/best
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from seq2seq.infer.autoencoder import Autoencoder

FIRST = "A man in an orange hat starring at something."
SECOND = "Two dogs are playing in the snow."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--lines", default="runs/autoencoder/captions/valid.txt")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--first", default=FIRST)
    p.add_argument("--second", default=SECOND)
    args = p.parse_args()
    lines = [s for s in Path(args.lines).read_text(encoding="utf-8").splitlines() if s.strip()]
    ae = Autoencoder.from_checkpoint(args.checkpoint, device="cpu")
    mu = ae.encode(lines)  # (N, c): the posterior means
    kls: list[torch.Tensor] = []
    hook = ae.model.bottleneck.register_forward_hook(lambda module, inputs, out: kls.append(out[1].detach()))
    scores = ae.score(lines)  # (N, 3): NLL, tokens, NLL per token; the hook sees each batch's KL
    hook.remove()
    kl = torch.cat(kls).double()
    active = int((mu.astype(np.float64).var(axis=0) > 0.01).sum())
    print(f"{len(lines):,} lines of {args.lines}; checkpoint {args.checkpoint}")
    print(f"reconstruction NLL per token (z = mu): {scores[:, 0].sum() / scores[:, 1].sum():.3f} nats")
    print(f"KL per sentence: {kl.mean():.2f} nats (median {kl.median():.2f})")
    print(f"active units: {active} of {mu.shape[1]} (posterior-mean variance across sentences > 0.01)")
    print(f"\nsamples from N(0, I), seed {args.seed}:")
    for s in ae.sample(args.samples, seed=args.seed):
        print(f"  {s}")
    print(f"\ninterpolation, 5 points from mu({args.first!r}) to mu({args.second!r}):")
    for s in ae.interpolate(args.first, args.second, steps=5):
        print(f"  {s}")


if __name__ == "__main__":
    main()
