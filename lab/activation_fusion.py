"""Fuse standalone ReLUs into a copy of the ADD that feeds them, so XNNPACK runs a full-integer model whole.

Pre-activation residual networks (Xception's middle flow, ResNet v2) apply ReLU to a sum that the next
residual connection also needs unactivated, so the TF Lite converter cannot fuse that ReLU into its ADD and
keeps it as an op of its own. In a float model that costs nothing: XNNPACK runs RELU. In an int8 model it
does not: LiteRT's XNNPACK delegate takes int8 ADD with a fused activation but no standalone int8 RELU, so
each one splits the graph (Xception: 12 partitions) and runs in TF Lite's scalar reference kernel. Measured
on the int8 Xception (docs/performance.md): those 11 RELUs took a quarter to half of its inference time.

RELU(ADD(a, b)) becomes ADD(a, b) with the activation fused, written straight into the RELU's output tensor
(same quantization); the original ADD stays for its other consumers. The values are the same: one
requantization fewer, so at most one quantization step apart.
"""

from __future__ import annotations

import copy
from typing import Any

# Standalone activations an ADD can compute itself: each has a fused-activation value of the same name.
_ACTIVATIONS = ("RELU", "RELU6", "RELU_N1_TO_1")


def fuse_activations_into_adds(model_bytes: bytes) -> tuple[bytes, int]:
    """The model with every ``ACT(ADD(a, b))`` computed by one ADD with ``ACT`` fused, and how many were."""
    from lab import tflite_graph

    model = tflite_graph.read(model_bytes)
    builtin = tflite_graph.schema().BuiltinOperator
    activation = tflite_graph.schema().ActivationFunctionType
    wanted = {getattr(builtin, name): getattr(activation, name) for name in _ACTIVATIONS}

    def code(op: Any) -> int:
        return tflite_graph.op_code(model, op)

    fused = 0
    for graph in model.subgraphs:
        producer = {int(t): op for op in graph.operators for t in op.outputs}
        rewritten: list[Any] = []
        touched: list[Any] = []
        for op in graph.operators:
            add = producer.get(int(op.inputs[0])) if code(op) in wanted else None
            if (
                add is not None
                and code(add) == builtin.ADD
                and add.builtinOptions.fusedActivationFunction == activation.NONE
            ):
                twin = copy.deepcopy(add)
                twin.outputs = list(op.outputs)
                twin.builtinOptions.fusedActivationFunction = wanted[code(op)]
                rewritten.append(twin)  # where the activation was: its inputs are ready by then
                touched.append(add)
                fused += 1
            else:
                rewritten.append(op)
        graph.operators = _without_unused(rewritten, touched, graph.outputs)
    return (tflite_graph.write(model), fused) if fused else (model_bytes, 0)


def _without_unused(operators: list[Any], candidates: list[Any], graph_outputs: Any) -> list[Any]:
    """Drop the candidate ADDs whose result nothing reads any more (the activation was their only consumer)."""
    read = {int(t) for op in operators for t in op.inputs} | {int(t) for t in graph_outputs}
    unused = {id(op) for op in candidates if not any(int(t) in read for t in op.outputs)}
    return [op for op in operators if id(op) not in unused]
