"""Read and write a TF Lite flatbuffer as the mutable objects TensorFlow's schema gives, for graph rewrites."""

from __future__ import annotations

from typing import Any


def schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def read(model_bytes: bytes) -> Any:
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))


def write(model: Any) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def op_code(model: Any, op: Any) -> int:
    """The op's BuiltinOperator; codes below 127 live in the deprecated field of older files."""
    code = model.operatorCodes[op.opcodeIndex]
    return int(max(code.builtinCode, code.deprecatedBuiltinCode))


def readers(graph: Any) -> dict[int, list[Any]]:
    """Tensor index -> the ops that read it."""
    out: dict[int, list[Any]] = {}
    for op in graph.operators:
        for t in op.inputs:
            out.setdefault(int(t), []).append(op)
    return out
