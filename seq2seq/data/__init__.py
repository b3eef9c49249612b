"""Data: reading text, SentencePiece tokenizers, loading parallel corpora, batching.

This package never imports the model, training, inference or CLI code.
"""

from seq2seq.data.batching import (
    Batch,
    Example,
    FilterStats,
    collate,
    collate_source,
    encode_pairs,
)
from seq2seq.data.context_targets import load_context_targets
from seq2seq.data.loading import ParallelText, load_labelled, load_monolingual, load_parallel
from seq2seq.data.noise import add_noise, local_shuffle, word_dropout
from seq2seq.data.samplers import TokenBudgetBatchSampler
from seq2seq.data.textio import check_text_file, read_lines
from seq2seq.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SpmTokenizer,
    TokenizerPair,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "Batch",
    "Example",
    "FilterStats",
    "ParallelText",
    "SpmTokenizer",
    "TokenBudgetBatchSampler",
    "TokenizerPair",
    "check_text_file",
    "collate",
    "collate_source",
    "encode_pairs",
    "add_noise",
    "load_context_targets",
    "load_labelled",
    "load_monolingual",
    "load_parallel",
    "local_shuffle",
    "read_lines",
    "word_dropout",
]
