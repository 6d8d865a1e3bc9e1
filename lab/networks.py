"""The network a run trains: the small residual CNN built from scratch, or an ImageNet-pretrained
EfficientNet-Lite whose weights are proven right on known photos before it is fine-tuned."""

from __future__ import annotations

from typing import Any

from lab.recipe import Recipe, TrainingError


def build_network(recipe: Recipe, num_classes: int) -> Any:
    """The network to train; a pretrained backbone is first proven right on photos with known ImageNet classes."""
    if recipe.backbone == "none":
        return build_scratch_model(recipe, num_classes)
    import keras

    from lab import efficientnet_lite
    from lab.imagenet_check import BackboneCheckFailed, check_imagenet_top1, describe

    variant = efficientnet_lite.VARIANTS[recipe.backbone]
    try:
        state = efficientnet_lite.load_checkpoint(variant)
        imagenet = efficientnet_lite.build(variant, variant.resolution)
        efficientnet_lite.load_weights(imagenet, state, skip=())
        answers = check_imagenet_top1(imagenet, variant.resolution)
    except (RuntimeError, BackboneCheckFailed, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    print(f"{variant.name} ImageNet weights check: {describe(answers)}", flush=True)
    model = efficientnet_lite.build(variant, recipe.image_size, num_classes, dropout=recipe.dropout, head_name="logits")
    efficientnet_lite.load_weights(model, state)
    if recipe.freeze_bn:  # a frozen BatchNormalization layer also normalises with its moving statistics in training
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return model


def build_scratch_model(recipe: Recipe, num_classes: int) -> Any:
    """Stem (stride 4) + residual stages (stride 2 each after the first) + global pooling + dense."""
    import keras

    layers = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int = 3, strides: int = 1, act: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if act else x

    def block(x: Any, filters: int, strides: int) -> Any:
        shortcut = x
        y = conv_bn(x, filters, strides=strides)
        y = conv_bn(y, filters, act=False)
        if strides != 1 or shortcut.shape[-1] != filters:
            if strides != 1:
                shortcut = layers.AveragePooling2D(strides, padding="same")(shortcut)
            shortcut = conv_bn(shortcut, filters, kernel=1, act=False)
        return layers.ReLU()(layers.Add()([y, shortcut]))

    size, widths = recipe.image_size, recipe.widths
    inputs = keras.Input((size, size, 3), name="input")
    x = conv_bn(inputs, widths[0] // 2, strides=2)
    x = conv_bn(x, widths[0])
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, (filters, count) in enumerate(zip(widths, recipe.blocks, strict=True)):
        for i in range(count):
            x = block(x, filters, strides=2 if (stage > 0 and i == 0) else 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(recipe.dropout)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="clothing_resnet")
