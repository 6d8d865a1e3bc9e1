"""Fold a non-overlapping AVERAGE_POOL_2D into the 1x1 convolution that reads it, so XNNPACK runs it.

ResNet-D shortcuts (those of lab/train.py's network trained from scratch, ``--backbone none``: AveragePooling2D(2),
then a 1x1 convolution) downsample by averaging. LiteRT's XNNPACK delegate runs AVERAGE_POOL_2D in float only, so
in an int8 model each one splits the graph and runs in TF Lite's own kernel (measured: ~11% of that network's
inference time).

Averaging k x k pixels and then applying a 1x1 convolution W is one k x k convolution with stride k whose
every tap is W / k^2. In int8 the weights' integers stay as they are (tiled) and their scales shrink by k^2
(the bias, whose scale is input scale x weight scale, grows by k^2 in integers): the sum of the k^2 pixels is
kept exactly in the 32-bit accumulator instead of being rounded to int8 first.
"""

from __future__ import annotations

from typing import Any


def fold_average_pools(model_bytes: bytes) -> tuple[bytes, int]:
    """The model with every foldable ``CONV_1x1(AVERAGE_POOL(x))`` as one strided convolution, and how many were."""
    from lab import tflite_graph

    model = tflite_graph.read(model_bytes)
    folded = 0
    for graph in model.subgraphs:
        reading = tflite_graph.readers(graph)  # of pool outputs, which folding leaves alone
        pools: list[Any] = []
        for pool in graph.operators:
            conv = _foldable(model, graph, pool, reading)
            if conv is not None:
                _fold(model, graph, pool, conv)
                pools.append(pool)
        graph.operators = [op for op in graph.operators if not any(op is p for p in pools)]
        folded += len(pools)
    return (tflite_graph.write(model), folded) if folded else (model_bytes, 0)


def _foldable(model: Any, graph: Any, pool: Any, reading: dict[int, list[Any]]) -> Any:
    """The 1x1 convolution that ``pool`` can be folded into, or None."""
    from lab import tflite_graph

    schema = tflite_graph.schema()
    if tflite_graph.op_code(model, pool) != schema.BuiltinOperator.AVERAGE_POOL_2D:
        return None
    opts = pool.builtinOptions
    source, pooled = graph.tensors[pool.inputs[0]], int(pool.outputs[0])
    shape = list(source.shape)
    if (
        opts.fusedActivationFunction != schema.ActivationFunctionType.NONE
        or (opts.filterHeight, opts.filterWidth) != (opts.strideH, opts.strideW)  # non-overlapping windows
        or len(shape) != 4
        or shape[1] % opts.strideH
        or shape[2] % opts.strideW  # so no padding either
        or not _same_quantization(source, graph.tensors[pooled])
        or len(reading.get(pooled, [])) != 1
        or pooled in graph.outputs
    ):
        return None
    conv = reading[pooled][0]
    if tflite_graph.op_code(model, conv) != schema.BuiltinOperator.CONV_2D or int(conv.inputs[0]) != pooled:
        return None
    c = conv.builtinOptions
    weights = graph.tensors[conv.inputs[1]]
    if (
        list(weights.shape)[1:3] != [1, 1]
        or (c.strideH, c.strideW) != (1, 1)
        or (c.dilationHFactor, c.dilationWFactor) != (1, 1)
        or weights.type not in (schema.TensorType.INT8, schema.TensorType.FLOAT32)
    ):
        return None
    if any(model.buffers[graph.tensors[t].buffer].data is None for t in conv.inputs[1:] if t >= 0):
        return None  # data stored outside the flatbuffer (models over 2 GB)
    if weights.type == schema.TensorType.INT8 and len(conv.inputs) > 2 and conv.inputs[2] >= 0:
        import numpy as np

        bias = np.frombuffer(bytes(model.buffers[graph.tensors[conv.inputs[2]].buffer].data), np.int32)
        taps = opts.strideH * opts.strideW
        if np.abs(bias.astype(np.int64)).max(initial=0) * taps >= 2**31:
            return None  # its integers grow by the number of taps (see _fold) and must stay int32
    return conv


def _same_quantization(a: Any, b: Any) -> bool:
    qa, qb = a.quantization, b.quantization
    if qa is None or qa.scale is None:
        return qb is None or qb.scale is None
    return (
        qb is not None
        and qb.scale is not None
        and list(qa.scale) == list(qb.scale)
        and list(qa.zeroPoint) == list(qb.zeroPoint)
    )


def _fold(model: Any, graph: Any, pool: Any, conv: Any) -> None:
    import numpy as np

    from lab import tflite_graph

    schema = tflite_graph.schema()
    kh, kw = pool.builtinOptions.strideH, pool.builtinOptions.strideW
    taps = kh * kw
    weights = _own_tensor(graph, conv, 1)
    dtype = np.int8 if weights.type == schema.TensorType.INT8 else np.float32
    w = np.frombuffer(bytes(model.buffers[weights.buffer].data), dtype).reshape(weights.shape)
    tiled = np.tile(w, (1, kh, kw, 1))
    if dtype == np.float32:
        tiled = tiled / np.float32(taps)
    else:
        weights.quantization.scale = [s / taps for s in weights.quantization.scale]
        if len(conv.inputs) > 2 and int(conv.inputs[2]) >= 0:
            bias = _own_tensor(graph, conv, 2)
            b = np.frombuffer(bytes(model.buffers[bias.buffer].data), np.int32) * np.int32(taps)  # fits: _foldable
            _store(model, bias, b)
            bias.quantization.scale = [s / taps for s in bias.quantization.scale]
    _store(model, weights, tiled.astype(dtype))
    weights.shape = np.array(tiled.shape, np.int32)
    if weights.shapeSignature is not None and len(weights.shapeSignature):
        weights.shapeSignature = np.array(tiled.shape, np.int32)
    conv.inputs[0] = pool.inputs[0]
    conv.builtinOptions.strideH, conv.builtinOptions.strideW = kh, kw
    conv.builtinOptions.padding = schema.Padding.VALID


def _own_tensor(graph: Any, op: Any, position: int) -> Any:
    """The op's input tensor at ``position``, copied first if another op reads it too: the converter shares
    identical constants (two all-zero biases, say), and this one is about to change."""
    import copy

    index = int(op.inputs[position])
    if sum(int(t) == index for other in graph.operators for t in other.inputs) > 1:
        graph.tensors.append(copy.deepcopy(graph.tensors[index]))
        op.inputs[position] = len(graph.tensors) - 1
    return graph.tensors[op.inputs[position]]


def _store(model: Any, tensor: Any, values: Any) -> None:
    """Write ``values`` as the tensor's data, into a buffer of its own when another tensor shares it."""
    import numpy as np

    from lab import tflite_graph

    data = np.frombuffer(values.tobytes(), np.uint8)
    users = sum(t.buffer == tensor.buffer for g in model.subgraphs for t in g.tensors)
    if users == 1:
        model.buffers[tensor.buffer].data = data
        return
    buffer = tflite_graph.schema().BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
