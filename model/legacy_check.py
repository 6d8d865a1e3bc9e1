"""Run a .tflite in tflite-runtime (the book's runtime), for convert.py's compatibility check.

    <python with tflite-runtime> model/legacy_check.py MODEL.tflite INPUTS.npy OUTPUTS.npy

Exits non-zero with the runtime's own message when the model does not load (e.g. op versions it lacks).
"""

import sys

import numpy as np

from core.model import run_interpreter


def main(model_path: str, inputs_path: str, outputs_path: str) -> int:
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
    sys.exit(main(*sys.argv[1:4]))
