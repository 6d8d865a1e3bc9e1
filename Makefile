# make install   -> virtualenvs (.venv: everything; .venv-tflite: the book's tflite-runtime stack), npm packages,
#                   Debian's chromium for the page's browser tests
# make check     -> ruff (lint, format), mypy and checkov
# make test      -> make check, the whole test suite, then the core tests again on tflite-runtime 2.14
PYTHON ?= python3
VENV := .venv
LEGACY := .venv-tflite
PY := $(VENV)/bin/python
DATA ?= ../shared/data/clothing-dataset-small
# The shipped model's version, the project's too (pyproject.toml reads the same file).
MODEL_VERSION ?= $(shell cat VERSION)
RUN := lab/runs/final

.PHONY: install install-python install-legacy install-checkov install-node install-browser check check-then-legacy test test-main \
        test-legacy model cv calibrate novelty package clean bundle-gcp bundle-azure serve-gcp bench bench-smoke

install: install-python install-legacy install-checkov install-node install-browser

# The last line: the Azure Functions worker's loader, for tests/clouds/azure_worker.py. It is published for Python
# 3.13+ only; its indexing code runs on 3.11 (its one dependency, azure-functions, is in requirements-dev.txt).
install-python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python azure-functions-runtime==1.3.0

install-legacy:
	$(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/python -m pip install --quiet -r requirements-legacy.txt -c requirements-legacy.lock
	$(LEGACY)/bin/python -m pip install --quiet --no-deps -e .

# checkov pins boto3 and packaging to versions the project's tools cannot use: its own virtualenv.
install-checkov:
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt -c requirements-checkov.lock

install-node:
	npm ci --no-audit --no-fund

# Debian's Chromium for the page's browser tests (Playwright drives it; its own browser download cannot work here).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
install-browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

# The suite first (two processes), then side by side on two cores: the benchmarks' smoke run, and lint and types
# followed by the book's-runtime tests; each one's output kept together. Any failure fails `make test`.
test: test-main
	$(MAKE) --no-print-directory -j2 --output-sync=target bench-smoke check-then-legacy

check-then-legacy: check
	$(MAKE) --no-print-directory test-legacy

# Lint, formatting and types (configured in pyproject.toml), and checkov on the packaged templates (a finding
# .checkov.yaml does not decide fails the build); `make test` runs it too.
check:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests/adapters/aws/test_checkov.py

# Two worker processes (pytest-xdist), each taking one test file at a time, so that a file's module fixtures (the
# serverless packages, a server) are built once; most tests wait on a subprocess or a socket, so two processes
# finish in about two thirds of the time on two cores. `$(PY) -m pytest tests` (one process) runs the same tests.
XDIST := -n 2 --dist loadfile
test-main:
	EXPECT_TFLITE_RUNTIME=ai_edge_litert $(PY) -m pytest $(XDIST) tests --ignore=tests/adapters/aws/test_checkov.py

# The book's runtime: tflite-runtime 2.14 + numpy 1.x + keras-image-helper 0.0.1, same core tests.
test-legacy:
	EXPECT_TFLITE_RUNTIME=tflite_runtime $(LEGACY)/bin/python -m pytest $(XDIST) tests/core

# Retrain the default model with the lab (lab/): fine-tune ImageNet EfficientNet-Lite0 on train + validation for the
# epoch count that cross-validation chose (about 25 minutes on 2 cores), convert it to int8 (parity-checked; the
# served files in model/ change only if every check passes) and check it through serving on validation (photos it
# trained on: the recipe's accuracy on photos it never saw is the cross-validation's, `make cv`), then its
# temperature (`make calibrate`).
model:
	$(PY) -m lab.train --data-dir $(DATA) --out $(RUN) --all-photos
	$(PY) -m lab.convert $(RUN)/model.keras --out model/clothing-model.tflite --name clothing-model \
	    --version $(MODEL_VERSION) --labels $(RUN)/labels.txt \
	    --quantize int8 --representative-dir $(DATA)/train --representative-count 1000 \
	    --parity-dir $(DATA)/validation --legacy-python $(LEGACY)/bin/python
	cp $(RUN)/model.keras model/clothing-model.keras
	$(PY) -m lab.evaluate model/clothing-model.json --split $(DATA)/validation --json model/metrics.json
	if [ -f $(CV)/fold0/int8-r1000/serving.npz ]; then $(MAKE) calibrate novelty; fi

# Cross-validation of the shipped recipe over train + validation: 5 folds of `python -m lab.train --fold I/5`
# (about an hour each on 2 cores; a fold that has its summary.json is kept, so an interrupted run resumes), each
# keeping its out-of-fold logits, then each fold's int8 model served on the photos it held out
# (`python -m lab.cv_serving`, about 15 minutes): the recipe's accuracy and confusion matrix on photos it never saw,
# as served, in lab/results/. Not part of `make model` (90 minutes).
CV := lab/runs/cv-nocrop
cv:
	for i in 0 1 2 3 4; do [ -f $(CV)/fold$$i/summary.json ] || \
	    $(PY) -m lab.train --data-dir $(DATA) --out $(CV)/fold$$i --fold $$i/5 || exit 1; done
	$(PY) -m lab.cv_serving $(CV) --data-dir $(DATA) --json lab/results/cv-serving.json \
	    --confusion-png lab/results/confusion-matrix.png

# The recipe's cross-validated accuracy as served, and the temperature for `probabilities` fitted on its folds'
# int8 out-of-fold logits (every photo: the shipped model trained on all of them), stored in its manifest.
calibrate:
	$(PY) -m lab.calibrate $(CV) --served --manifest model/clothing-model.json \
	    --json model/calibration.json --write-manifest

# The verdict of `details` answers: the not-clothing development set (cached outside the repository), then each
# fold's statistics fitted in-fold and measured on its held-out photos, the thresholds written into the manifest
# and the shipped model's statistics beside it (python -m lab.novelty; docs/verdict.md); then the ImageNet gate,
# whose band starts at a distance of the shipped statistics (python -m lab.imagenet_gate, about a minute).
novelty:
	$(PY) -m lab.not_clothing
	$(PY) -m lab.novelty $(CV) --data-dir $(DATA) --json lab/results/novelty.json --write
	$(PY) -m lab.imagenet_gate --data-dir $(DATA) --json lab/results/imagenet-gate.json --write

package:
	npx serverless package

clean:
	rm -rf .serverless dist .pytest_cache

# Any Python 3 builds the bundles (the standard library only): a deploy needs no development install.
bundle-gcp:
	$(PYTHON) scripts/bundle.py gcp dist/gcp

bundle-azure:
	$(PYTHON) scripts/bundle.py azure dist/azure

# Local servers from the repository (the bundles run the same code).
serve-gcp:
	PYTHONPATH=. $(VENV)/bin/functions-framework --source gcp/main.py --target predict --port 8080

# Benchmarks (a few minutes): results in bench/results/, discussed in docs/performance.md.
bench:
	$(PY) -m bench.run

bench-smoke:
	BENCH_RESULTS=bench/results/tmp/smoke $(PY) -m bench.run --smoke
