# make install   -> virtualenvs (.venv: everything; .venv-tflite: the book's tflite-runtime stack) + npm packages
# make test      -> the whole test suite, then the core tests again on tflite-runtime 2.14
PYTHON ?= python3
VENV := .venv
LEGACY := .venv-tflite
PY := $(VENV)/bin/python
DATA ?= ../shared/data/clothing-dataset-small

.PHONY: install install-python install-legacy install-node test test-main test-legacy \
        model package clean bundle-gcp bundle-azure serve-gcp

install: install-python install-legacy install-node

install-python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements-dev.lock

install-legacy:
	$(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/python -m pip install --quiet -r requirements-legacy.txt -c requirements-legacy.lock

install-node:
	npm ci --no-audit --no-fund

test: test-main test-legacy

test-main:
	EXPECT_TFLITE_RUNTIME=ai_edge_litert $(PY) -m pytest tests

# The book's runtime: tflite-runtime 2.14 + numpy 1.x + keras-image-helper 0.0.1, same core tests.
test-legacy:
	EXPECT_TFLITE_RUNTIME=tflite_runtime $(LEGACY)/bin/python -m pytest tests/core

# Retrain the default model (about 20 minutes on 2 cores) and convert it.
model:
	$(PY) model/train.py --data-dir $(DATA) --out model/runs/default
	$(PY) model/convert.py model/runs/default/best.keras --out model/clothing-model.tflite \
	    --name clothing-model --parity-dir $(DATA)/validation --legacy-python $(LEGACY)/bin/python

package:
	npx serverless package

clean:
	rm -rf .serverless dist .pytest_cache

bundle-gcp:
	$(PY) scripts/bundle.py gcp dist/gcp

bundle-azure:
	$(PY) scripts/bundle.py azure dist/azure

# Local servers from the repository (the bundles run the same code).
serve-gcp:
	PYTHONPATH=. $(VENV)/bin/functions-framework --source gcp/main.py --target predict --port 8080
