"""This project's handler, timed stage by stage: python bench/worker_ours.py MANIFEST URL ITERATIONS THREADS."""

import json
import os
import sys
import time


def main(manifest, url, iterations, threads):
    os.environ.update(
        MODEL_MANIFEST=manifest, MODEL_THREADS=threads, FETCH_ALLOW_NETWORKS="127.0.0.0/8", LOG_LEVEL="WARNING"
    )
    from core.fetch import fetch_image_bytes
    from core.images import decode_image
    from core.service import get_service
    from handlers.aws import lambda_handler

    service = get_service()
    clf = service.classifier.load()
    steps = ("fetch", "decode", "preprocess", "inference", "json", "end_to_end")
    stages: dict[str, list[float]] = {step: [] for step in steps}
    for i in range(int(iterations) + 3):  # 3 warm-up rounds
        t0 = time.perf_counter()
        data = fetch_image_bytes(url, service.settings)
        t1 = time.perf_counter()
        image = decode_image(data, service.settings.max_image_pixels)
        t2 = time.perf_counter()
        batch = clf.preprocess(image)
        t3 = time.perf_counter()
        scores = clf.predict(batch)
        t4 = time.perf_counter()
        json.dumps(clf.postprocess(scores))
        t5 = time.perf_counter()
        lambda_handler({"url": url}, None)  # the whole handler, as Lambda calls it
        t6 = time.perf_counter()
        if i >= 3:
            for name, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6)), strict=False):
                stages[name].append((b - a) * 1000)
    print(json.dumps({"runtime": clf.runtime, "samples_ms": stages}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
