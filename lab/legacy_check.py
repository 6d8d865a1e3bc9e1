"""Run a .tflite in tflite-runtime (the book's runtime), for lab/convert.py's compatibility check.

    <python with tflite-runtime> lab/legacy_check.py MODEL.tflite INPUTS.npy OUTPUTS.npy

It runs in another interpreter (the one with tflite-runtime 2.14), so it is started by its path and imports
nothing of the lab. Exits non-zero with the runtime's own message when the model does not load (e.g. op versions
it lacks).
"""

from __future__ import annotations

import sys

import numpy as np

from core.model import run_interpreter


def main(argv: list[str] | None = None) -> int:
    model_path, inputs_path, outputs_path = (sys.argv[1:] if argv is None else argv)[:3]
    from tflite_runtime.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=model_path)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        print(f"tflite-runtime cannot load {model_path}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    np.save(outputs_path, np.stack([run_interpreter(interpreter, row[None]) for row in np.load(inputs_path)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
