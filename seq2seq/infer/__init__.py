"""Inference: greedy and beam search over any encoder-decoder model."""

from seq2seq.infer.search import Hypothesis, beam_search, generate, greedy_search

__all__ = ["Hypothesis", "beam_search", "generate", "greedy_search"]
