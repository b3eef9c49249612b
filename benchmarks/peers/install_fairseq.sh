#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/install_fairseq.sh); only the comment on the
# Python 3.11 shim corrected (it gives default instances an identity hash, it does not use default_factory).
# fairseq 0.12.2 (last PyPI release) on Python 3.11 + torch 2.13.0 (CPU).
# - no cp311 wheel => build the sdist with --no-build-isolation (torch/cython/numpy preinstalled)
# - the 0.12.2 sdist lacks the sources of 3 optional C++ extensions (libbase balanced_assignment,
#   libnat edit_dist, alignment_train_cpu) => setup.py is patched to skip extensions whose
#   sources are missing (only needed for BASE layers / non-autoregressive models)
# - --no-deps: fairseq pins torchaudio (would pull a CUDA torch); other deps installed by hand
# - Python 3.11 rejects fairseq/hydra dataclass defaults ("mutable default ... use default_factory");
#   fixed by a tiny import-time shim (.pth, py311_dataclass_fix.py) that gives such default instances the
#   identity hash, i.e. restores the Python 3.10 rule (default_factory does not work: fairseq reads field.default).
set -euo pipefail
source "$(dirname "$0")/common.sh"
V=$PEERS_ROOT/fairseq
B=$PEERS_ROOT/build/fairseq; rm -rf "$B"; mkdir -p "$B"
python3 -m venv "$V"
"$V/bin/pip" install -q "$TORCH_PIN" "numpy<2" "cython<3" setuptools wheel
"$V/bin/pip" install -q cffi regex tqdm bitarray sacrebleu sentencepiece==0.2.3 "hydra-core>=1.0.7,<1.1" "omegaconf<2.1" -c <(echo "$TORCH_PIN")
"$V/bin/pip" download -q --no-deps --no-build-isolation --no-binary :all: fairseq==0.12.2 -d "$B"
tar xzf "$B/fairseq-0.12.2.tar.gz" -C "$B"
sed -i 's/^def do_setup(package_data):/extensions = [e for e in extensions if all(os.path.exists(s) for s in e.sources)]\n\n\ndef do_setup(package_data):/' "$B/fairseq-0.12.2/setup.py"
MAX_JOBS=2 "$V/bin/pip" install -q --no-deps --no-build-isolation "$B/fairseq-0.12.2"
SP=$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp "$PEERS_DIR/py311_dataclass_fix.py" "$SP/_py311_dataclass_fix.py"
echo "import _py311_dataclass_fix" > "$SP/_py311_dataclass_fix.pth"
"$V/bin/python" -c "import torch, fairseq; print('fairseq', fairseq.__version__, 'torch', torch.__version__)"
