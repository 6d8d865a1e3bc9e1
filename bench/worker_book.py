"""The book's stack, timed: python bench/worker_book.py MODEL URL ITERATIONS SIZE (in .venv-tflite)."""

import json
import os
import sys
import time


def main(model, url, iterations, size):
    os.environ.update(BOOK_MODEL=model, BOOK_SIZE=size)
    from bench import book_handler as book  # reads the environment when imported

    stages: dict[str, list[float]] = {"fetch_decode_preprocess": [], "inference": [], "json": [], "end_to_end": []}
    for i in range(int(iterations) + 3):
        t0 = time.perf_counter()
        X = book.preprocessor.from_url(url)
        t1 = time.perf_counter()
        book.interpreter.set_tensor(book.input_index, X)
        book.interpreter.invoke()
        preds = book.interpreter.get_tensor(book.output_index)
        t2 = time.perf_counter()
        json.dumps(dict(zip(book.CLASSES, preds[0].tolist(), strict=False)))
        t3 = time.perf_counter()
        book.lambda_handler({"url": url}, None)
        t4 = time.perf_counter()
        if i >= 3:
            for name, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=False):
                stages[name].append((b - a) * 1000)
    print(json.dumps({"runtime": "tflite_runtime", "samples_ms": stages}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
