"""The rules of image outputs: ``model.decoder: image``, an image autoencoder (docs/images.md).

An image autoencoder is ``task: autoencoder`` with an image or vector encoder (``model.encoder``
cnn or mlp), ``data.format`` images or digits, and the MSE image head (``model.decoder: image``);
``autoencoder.image_noise`` makes it denoising, ``model.downsample`` super-resolving.
"""

from __future__ import annotations

from seq2seq.config.sections import Config
from seq2seq.errors import ConfigError

IMAGE_NOISE = ("none", "gaussian", "masking")
IMAGE_OUTPUTS = ("sigmoid", "none")


def validate_image_output(cfg: Config) -> None:
    """Check ``model.decoder: image`` and the settings only it reads; a one-line ConfigError naming the key."""
    m, a = cfg.model, cfg.autoencoder
    image = m.decoder == "image"
    if cfg.task == "autoencoder" and m.encoder in ("cnn", "mlp") and not image:
        raise ConfigError(
            f"task=autoencoder with model.encoder={m.encoder} reconstructs images: set model.decoder to image "
            f"(the MSE image head), not {m.decoder}"
        )
    if image and (cfg.task != "autoencoder" or m.encoder not in ("cnn", "mlp")):
        raise ConfigError(
            "model.decoder=image is the image autoencoder's head: it needs task=autoencoder and model.encoder "
            f"cnn or mlp (got task={cfg.task}, model.encoder={m.encoder})"
        )
    if a.image_noise not in IMAGE_NOISE:
        raise ConfigError(
            f"config key 'autoencoder.image_noise' must be one of {', '.join(IMAGE_NOISE)}; got '{a.image_noise}'"
        )
    if m.image_output not in IMAGE_OUTPUTS:
        raise ConfigError(
            f"config key 'model.image_output' must be one of {', '.join(IMAGE_OUTPUTS)}; got '{m.image_output}'"
        )
    if m.downsample < 1:
        raise ConfigError(
            f"config key 'model.downsample' must be at least 1 (1: no super-resolution); got {m.downsample}"
        )
    if not image:
        if m.downsample > 1 or a.image_noise != "none":
            key = "model.downsample" if m.downsample > 1 else "autoencoder.image_noise"
            raise ConfigError(f"{key} is for image autoencoders (model.decoder=image)")
        return
    if a.image_noise == "gaussian" and not 0 < a.image_noise_level:
        raise ConfigError(
            f"autoencoder.image_noise_level is the Gaussian noise's std: it must be > 0; got {a.image_noise_level}"
        )
    if a.image_noise == "masking" and not 0 < a.image_noise_level < 1:
        raise ConfigError(
            "autoencoder.image_noise_level is the share of pixels masked: it must be in (0, 1); "
            f"got {a.image_noise_level}"
        )
    if cfg.train.early_stop_metric != "loss":
        raise ConfigError(
            f"train.early_stop_metric={cfg.train.early_stop_metric}: an image autoencoder is validated by its "
            "loss (the MSE per pixel): set it to loss (or auto)"
        )
    if m.item_sequence != "none" or m.item_classes:
        raise ConfigError("an image autoencoder reads one image per example: model.item_sequence=none, item_classes=0")
    if m.context_target_dim:
        raise ConfigError("an image autoencoder has no context target: set model.context_target_dim to 0")
    if m.downsample > 1:
        if len(m.item_shape) == 1:
            raise ConfigError("model.downsample pools images; vectors ([D]) cannot be pooled: set it to 1")
        if m.item_shape and (m.item_shape[-1] % m.downsample or m.item_shape[-2] % m.downsample):
            raise ConfigError(
                f"model.downsample={m.downsample} must divide the image's height and width (model.item_shape "
                f"{m.item_shape})"
            )
        if cfg.data.format == "digits" and 8 % m.downsample:
            raise ConfigError(f"model.downsample={m.downsample} must divide 8 (the digits are 8x8): 2, 4 or 8")
