"""Expose a classifier's inner activations as extra outputs of its TF Lite model, for the novelty check.

The activations are computed by every inference anyway; making them outputs of the model leaves every weight,
scale and op as it was, so the scores stay bit-for-bit the same, and serving pools them (core/novelty.py). A layer is
named as Keras names it (``block10_add``: the converter keeps the Keras names inside its tensor names), or
``pooled``: the vector the last dense layer reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

FULLY_CONNECTED = 9  # BuiltinOperator
POOLED = "pooled"


class FeatureOutputError(ValueError):
    """A layer that is not in the model, or a model whose outputs are not the scores alone."""


def expose_features(model_bytes: bytes, layers: Sequence[str]) -> tuple[bytes, list[int]]:
    """The model with each layer's activation as an output after the scores, and each one's channels. A model whose
    outputs are already those is returned as it is."""
    from lab import tflite_graph

    model = tflite_graph.read(model_bytes)
    graph = model.subgraphs[0]
    scores = int(graph.outputs[0])
    wanted = [_find(model, graph, layer, scores) for layer in layers]
    if [int(i) for i in graph.outputs] == [scores, *wanted]:
        return model_bytes, [_channels(graph, t) for t in wanted]
    if len(graph.outputs) != 1:
        raise FeatureOutputError(f"the model has {len(graph.outputs)} outputs; expected the scores alone")
    graph.outputs = [scores, *wanted]
    return tflite_graph.write(model), [_channels(graph, t) for t in wanted]


def scores_only(model_bytes: bytes) -> bytes:
    """The model with its scores as its only output, as a converter writes it (the extra outputs dropped)."""
    from lab import tflite_graph

    model = tflite_graph.read(model_bytes)
    model.subgraphs[0].outputs = model.subgraphs[0].outputs[:1]
    return tflite_graph.write(model)


def _find(model: Any, graph: Any, layer: str, scores: int) -> int:
    """The activation a layer outputs: the last op output whose name holds the layer's Keras name."""
    from lab import tflite_graph

    if layer == POOLED:
        producer = next((op for op in graph.operators if scores in [int(t) for t in op.outputs]), None)
        if producer is None or tflite_graph.op_code(model, producer) != FULLY_CONNECTED:
            raise FeatureOutputError("the model's scores are not made by a dense (FULLY_CONNECTED) layer")
        return int(producer.inputs[0])
    pattern = re.compile(rf"(^|[/;]){re.escape(layer)}(_\d+)?/")
    found = [int(t) for op in graph.operators for t in op.outputs if pattern.search(_name(graph, int(t)))]
    if not found:
        raise FeatureOutputError(f"no layer named {layer!r} in the model")
    return found[-1]


def _name(graph: Any, tensor: int) -> str:
    name = graph.tensors[tensor].name
    return name.decode() if isinstance(name, bytes) else str(name)


def _channels(graph: Any, tensor: int) -> int:
    shape = [int(v) for v in graph.tensors[tensor].shape]
    if len(shape) not in (2, 4) or shape[0] != 1:
        raise FeatureOutputError(f"tensor {_name(graph, tensor)!r} has shape {shape}; expected [1, C] or [1, H, W, C]")
    return shape[-1]
