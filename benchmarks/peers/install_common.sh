#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/install_common.sh); unchanged apart from this header.
# venv with sentencepiece only, used to train/apply the shared joint SPM model
set -euo pipefail
source "$(dirname "$0")/common.sh"
python3 -m venv "$PEERS_ROOT/common"
"$PEERS_ROOT/common/bin/pip" install -q sentencepiece==0.2.3 sacrebleu
"$PEERS_ROOT/common/bin/python" -c "import sentencepiece; print('sentencepiece', sentencepiece.__version__)"
