"""The config's sections as dataclasses, every field with its default (see :mod:`seq2seq.config`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class DigitsConfig:
    """``data.format: digits``: scikit-learn's 8x8 handwritten digits (no download) read aloud.

    The 1,797 images are split *by image* (``fractions`` of each class for the splits named
    ``train``, ``valid`` and ``test``, fixed by ``split_seed``), then numbers of ``min_digits`` to
    ``max_digits`` digits are composed from each split's own images, so no image of another split
    is ever seen. Targets: the number in words (``lang`` en or ko; numbers of more than one digit
    need num2words). See docs/images.md.
    """

    min_digits: int = 1
    max_digits: int = 1
    lang: str = "en"  # en | ko
    train_size: int = 5000  # numbers composed for training
    valid_size: int = 300
    test_size: int = 500
    split_seed: int = 0
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.1, 0.3])  # train, valid, test images
    # Each training number's images drawn afresh (same digits, other training images) at every batch.
    redraw: bool = True


@dataclass
class DataConfig:
    """Where the parallel data is and how it is filtered.

    ``format`` decides what ``train``/``valid``/``test`` mean:
      - ``text``: a file prefix; ``PREFIX.SRC_LANG`` and ``PREFIX.TGT_LANG`` (or ``.gz``) are read;
      - ``tsv``: a file with ``source<TAB>target`` lines;
      - ``jsonl``: a file of ``{"translation": {SRC_LANG: ..., TGT_LANG: ...}}`` lines
        (or flat ``{SRC_LANG: ..., TGT_LANG: ...}`` objects);
      - ``disk``: a split name of a dataset saved with ``save_to_disk`` at ``path``;
      - ``hub``: a split name of the hub dataset ``path`` (config ``hub_config``);
      - ``images``: a file prefix; ``PREFIX.npy`` holds the inputs (N, *item_shape), one image or
        vector per example, or (N, S, *item_shape), S items each; or ``PREFIX.SRC_LANG`` lists
        image files (PNG, ...), one per line; ``PREFIX.TGT_LANG`` the target lines;
      - ``digits``: a split name (train, valid, test) of generated digit images (``data.digits``).
    Relative file names are resolved against ``path`` (when set).

    ``train`` may also name several corpora, each with a weight that up-samples (> 1) or
    down-samples (< 1) its pairs: a list of ``"SPLIT"`` / ``"SPLIT:WEIGHT"`` strings or
    ``{split: SPLIT, weight: WEIGHT}`` mappings (see :func:`seq2seq.config.train_corpora` and
    docs/data.md).
    """

    format: str = "text"
    path: str = ""
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    train: Union[str, list[Any]] = "train"  # one split, or a list of weighted corpora (see above)
    valid: str = "valid"
    test: str = ""
    hub_config: str = ""
    max_src_tokens: int = 128  # longer training pairs are dropped (and counted)
    max_tgt_tokens: int = 128
    min_tokens: int = 1
    # Context targets (model.context_target_dim > 0): one vector per line of the train/valid
    # split, in a .npy file of shape (lines, dim) or a text file with one line of
    # whitespace-separated numbers per example. Relative names are resolved against ``path``.
    context_targets: str = ""
    valid_context_targets: str = ""
    # task autoencoder: one sentence per line (text: the file itself, or PREFIX.SRC_LANG;
    # tsv: the first column); task classification: ``sentence<TAB>label`` (tsv) or the
    # columns SRC_LANG (text) and TGT_LANG (label) of a jsonl/disk/hub dataset.
    skip_header: bool = False  # tsv: the first line is a header (e.g. "sentence<TAB>label")
    # Source normalisation before the tokenizer, in training and in translate (see
    # seq2seq/data/normalize.py): none | numerals (1,000 -> 1000, 007 -> 7, 3.140 -> 3.14).
    normalize: str = "none"
    # Where the tokenized training data (and SentencePiece models trained on it) are kept for
    # the next run (seq2seq/data/store.py). Empty: .seq2seq-cache/ beside the training data, or
    # ~/.cache/seq2seq when that directory is not writable. Relative: to the working directory.
    cache_dir: str = ""
    digits: DigitsConfig = field(default_factory=DigitsConfig)


@dataclass
class TokenizerConfig:
    """SentencePiece subword model: trained from the training data unless ``model`` is given."""

    model_type: str = "bpe"  # bpe | unigram | char | word
    vocab_size: int = 8000
    # Separate vocabularies only: the source side may use another type/size (e.g. char
    # for digits, word for their spelled-out targets). Empty / 0: same as the target.
    src_model_type: str = ""
    src_vocab_size: int = 0
    joint: bool = True  # one model for both sides (needed for shared embeddings)
    model: str = ""  # an existing .model file to reuse (joint, or source side)
    tgt_model: str = ""  # an existing .model file for the target side (separate vocabularies)
    character_coverage: float = 1.0
    max_sentences: int = 2_000_000  # SentencePiece input_sentence_size
    lowercase: bool = False


@dataclass
class ModelConfig:
    """Encoder/decoder architecture. Any encoder pairs with any decoder."""

    encoder: str = "transformer"  # transformer | gru (tokens); cnn | mlp (images, vectors: docs/images.md)
    decoder: str = "transformer"  # transformer | gru | bow (a bag-of-words head: models/bow.py); image (docs/images.md)
    # none: the decoder sees only the context vector; bahdanau (additive) / luong
    # (multiplicative) for GRU decoders; multihead for Transformer decoders;
    # auto: bahdanau for GRU, multihead for Transformer.
    attention: str = "auto"
    d_model: int = 256  # embedding size and hidden size of every layer
    enc_layers: int = 3
    dec_layers: int = 3
    heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.0
    embed_dropout: float = -1.0  # <0: same as dropout
    context_dim: int = 0  # size of the context vector; 0: d_model
    pooling: str = "auto"  # how the context vector is made: mean | max | final | auto
    positions: str = "sinusoidal"  # sinusoidal | learned (Transformer)
    max_positions: int = 1024
    bidirectional: bool = True  # GRU encoder
    tie_embeddings: bool = True  # decoder input and output embeddings
    share_embeddings: bool = True  # source and target embeddings (needs a joint vocabulary)
    # >0: an interface vector of this size between encoder and decoder, which staged training
    # fits to given vectors (data.context_targets); split into context_target_blocks one-hot
    # blocks (loss ce) or regressed (loss mse). Needs attention: none.
    context_target_dim: int = 0
    context_target_blocks: int = 1
    context_target_loss: str = "ce"  # ce | mse
    # The context vector's form (autoencoders): plain (the encoder's vector); variational
    # (z = mu + sigma * eps, KL to N(0, I)); binary (sigmoid code layer with Gaussian noise in
    # training, rounded to bits at inference: semantic hashing). The size is context_dim.
    bottleneck: str = "plain"
    binary_noise: float = 1.0  # std of the noise added before the sigmoid while training
    # How a binary code trains: noise (sigmoid of noisy logits, above) | straight_through
    # (sampled bits forward, the sigmoid's gradient backward; models/bottleneck.py)
    binary_estimator: str = "noise"
    classifier_hidden: int = 0  # task classification: hidden layer of the head (0: a linear head)
    # What the head reads: the context vector, or the context vector concatenated with the
    # masked max / mean of the encoder's per-position states.
    classifier_features: str = "context"  # context | context+max | context+mean
    # Images and vectors in (model.encoder cnn | mlp; data.format images | digits): each item (an
    # image or a vector) becomes a d_model code (a small CNN, or an MLP; images flattened), then
    # item_sequence runs over a sequence of items (enc_layers layers). item_shape: [H, W] or
    # [C, H, W] images, [D] vectors; empty: the training data's.
    item_shape: list[int] = field(default_factory=list)
    item_sequence: str = "none"  # none | gru | transformer
    # > 0: the interface vector is one class per item (the digit each image shows), in
    # context_target_blocks place-value blocks of item_classes + 1 (the last: no item), the last
    # item in the first block; context_target_dim follows. Staged training (train.stage) fits the
    # encoder to the items' labels (data.format digits). Needs attention: none.
    item_classes: int = 0
    # decoder: image (task autoencoder, encoder cnn | mlp): one image out, MSE loss (docs/images.md).
    image_output: str = "sigmoid"  # sigmoid (pixels in [0, 1]) | none (linear outputs)
    downsample: int = 1  # > 1: super-resolution, the encoder reads the image mean-pooled by this factor


@dataclass
class TrainConfig:
    """Optimisation, validation, checkpoints."""

    output_dir: str = "runs/experiment"
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    cpu_kernels: bool = True  # on CPU: oneDNN fp32 linears and a cheaper dropout mask (models/cpu_kernels.py)
    threads: int = 0  # torch CPU threads; 0: torch's default
    max_tokens: int = 4096  # token budget per batch (source or target side, the larger)
    max_sentences: int = 0  # cap on sentences per batch; 0: none
    accumulate: int = 1  # gradient accumulation steps
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    weight_decay: float = 0.0001
    scheduler: str = "inverse_sqrt"  # inverse_sqrt | plateau | constant | linear (to min_lr at max_steps)
    encoder_lr_scale: float = 1.0  # the encoder's parameters train at this times the lr
    # classifiers: adversarial training on the word embeddings (train/adversarial.py): each batch
    # again with every sentence's embeddings moved this fraction of their norm up the loss; 0: off
    adversarial_eps: float = 0.0
    warmup_steps: int = 4000
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-6
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # 0: no clipping
    max_epochs: int = 100
    max_steps: int = 0  # 0: no limit
    max_minutes: float = 0.0  # stop (validate, save) after this much training time; 0: no limit
    valid_every: int = 0  # steps between validations; 0: once per epoch
    # Decode the validation set (greedy) and compute BLEU besides chrF and exact match (which are
    # computed whenever it is decoded: valid_bleu or an early_stop_metric other than loss).
    valid_bleu: bool = True
    valid_max_sentences: int = 0  # 0: the whole validation set
    # auto: bleu (translation, autoencoder: BLEU of the greedy reconstruction), accuracy
    # (classification); or loss | exact_match
    early_stop_metric: str = "auto"
    patience: int = 10  # validations without improvement before stopping; 0: never
    keep_last: int = 2  # step checkpoints kept besides best and last
    save_every: int = 0  # updates between saves of last/ (besides each validation's); 0: at validations only
    max_bad_updates: int = 10  # stop after this many updates in a row with a non-finite loss or gradient
    log_every: int = 100
    tensorboard: bool = False  # also log to OUTPUT_DIR/tensorboard (pip install seq2seq[tensorboard])
    progress: bool = True
    freeze: list[str] = field(default_factory=list)  # parts kept fixed: encoder, decoder (forward only)
    # What is trained: joint (end-to-end, input -> output); encoder (input -> the context
    # target, data.context_targets); decoder (given context target vectors -> output).
    stage: str = "joint"
    # Start from the encoder part / decoder part of other checkpoints (directories). The
    # tokenizer of that side comes with it; a conflicting one is refused.
    init_encoder: str = ""
    init_decoder: str = ""


@dataclass
class AutoencoderConfig:
    """Task ``autoencoder``: input noise (denoising) and the variational objective.

    Noise applies to the encoder's input while training only; the target is the clean
    sentence, and nothing is noised at validation or inference.
    """

    drop: float = 0.1  # probability of deleting each input token
    mask: float = 0.1  # probability of replacing each input token with <unk>
    shuffle: float = 0.0  # probability that a sentence is locally shuffled ...
    shuffle_distance: int = 3  # ... with no token moving more than this many positions
    # Variational (model.bottleneck=variational): loss = reconstruction + weight(step) * KL,
    # weight rising from 0 to kl_weight over kl_anneal_steps updates (linear or logistic).
    kl_schedule: str = "logistic"  # linear | logistic | constant
    kl_anneal_steps: int = 10000
    kl_weight: float = 1.0
    word_dropout: float = 0.0  # decoder inputs replaced with <unk> (Bowman et al. 2016)
    # Image autoencoders (model.decoder: image): noise on the input image while training (and on
    # validation, with fixed seeds); the target is the clean image. gaussian: + N(0, level^2),
    # clipped to [0, 1]; masking: each pixel set to 0 with probability level.
    image_noise: str = "none"  # none | gaussian | masking
    image_noise_level: float = 0.3


@dataclass
class SearchConfig:
    """Decoding settings, saved with a checkpoint. The decoding commands (``seq2seq translate``,
    ``evaluate``, ``reconstruct``) have one flag per field, made from its type and ``help``
    (``--beam``, ``--max-len-a``, ...), that overrides the checkpoint's value."""

    beam: int = field(default=5, metadata={"help": "beam size (1 = greedy)"})
    length_penalty: float = field(
        default=1.0, metadata={"help": "rank hypotheses by log-prob / length**A", "metavar": "A"}
    )
    max_len_a: float = field(
        default=1.5, metadata={"help": "maximum output length = A * source length + B", "metavar": "A"}
    )
    max_len_b: int = field(default=10, metadata={"help": "B of the maximum output length", "metavar": "B"})
    min_len: int = field(default=0, metadata={"help": "no end of sentence before N output tokens"})
    # A decoding batch holds at most batch_tokens source tokens (padding included) and at most
    # batch_rows hypotheses (sentences x beam). The row cap bounds a step's logits (rows x
    # vocabulary floats) and the peak memory: past a few hundred rows on a CPU the output layer and
    # log-softmax fall out of cache and cost more per row, so with the cap beam search keeps its
    # speed at any token budget while greedy search gains from a large one. Raise both on a GPU.
    # Measurements: docs/performance.md, "Figures behind code defaults".
    batch_tokens: int = field(default=6000, metadata={"help": "source tokens per decoding batch (padding included)"})
    batch_rows: int = field(default=512, metadata={"help": "hypotheses (sentences x beam) per decoding batch"})


@dataclass
class Config:
    task: str = "translation"  # translation | autoencoder | classification
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
