"""seq2seq: encoder-decoder sequence models built on PyTorch, SentencePiece and sacreBLEU."""

__version__ = "0.1.0"

# Bumped whenever the checkpoint layout changes; loading a checkpoint with another
# format version is refused with a clear message.
CHECKPOINT_FORMAT = 1
