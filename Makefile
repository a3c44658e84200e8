# collective.objectdetection: `make start` runs the whole system, `make test` tests it.
# Everything is installed under this folder: .venv (Plone + detector service),
# .venv-chainer (the Chainer backend), var/ (models, sample photos, the demo site).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
CHAINER_VENV := .venv-chainer
BIN := $(VENV)/bin
VAR := var
export DETECTOR_MODEL_DIR ?= $(CURDIR)/$(VAR)/models
export SAMPLES_DIR ?= $(CURDIR)/$(VAR)/samples
EVAL_DIR ?= $(CURDIR)/$(VAR)/eval
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: help install models samples eval-photos eval chainer tfjs start test test-fast lint format protos \
        protos-check buildout bench browser-deps clean

help:  ## This help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) -c constraints.txt -U pip setuptools wheel

$(VENV)/.installed: $(BIN)/python constraints.txt pyproject.toml detector_service/pyproject.toml
	$(BIN)/pip install $(PIP_QUIET) -c constraints.txt \
	    -e 'detector_service[onnx,opencv,dev]' -e '.[test]'
	touch $@

install: $(VENV)/.installed  ## Create .venv with Plone, the add-on and the detector service

models: install  ## Put the models' weights in place (verified by sha256) and convert them
	$(BIN)/detector-service fetch-model yolov3-tiny nanodet centernet

samples:  ## Fetch sample photos (darknet's and scikit-image's)
	bash scripts/fetch-samples.sh "$(SAMPLES_DIR)"

eval-photos: install  ## Fetch the evaluation photos of bench/eval/photos.json (sha256 checked)
	$(BIN)/python bench/fetch_eval_photos.py "$(EVAL_DIR)"

eval: install models eval-photos  ## Detection quality of every model, side by side (docs/quality.md)
	$(BIN)/python bench/quality.py --photos "$(EVAL_DIR)"

$(CHAINER_VENV)/.installed: constraints-chainer.txt scripts/build-chainer-env.sh \
        scripts/chainercv/_nms_gpu_post.py scripts/chainercv/patch_sdist.py detector_service/pyproject.toml
	bash scripts/build-chainer-env.sh $(CHAINER_VENV)
	touch $@

chainer: $(CHAINER_VENV)/.installed  ## Create .venv-chainer with the Chainer/ChainerCV backend

TFJS := tests/tfjs
$(TFJS)/node_modules/.package-lock.json: $(TFJS)/package.json $(TFJS)/package-lock.json
	cd $(TFJS) && npm ci --no-audit --no-fund --silent

tfjs: $(TFJS)/node_modules/.package-lock.json  ## TensorFlow.js (pure JS), the converter's reference in tests

browser-deps:  ## Install Debian's chromium for the browser test (needs root or sudo)
	bash scripts/install-chromium.sh

start: install models samples  ## Install and run detector + Plone with a demo site
	$(BIN)/python scripts/start.py

test: install models samples chainer browser-deps tfjs  ## Run every test
	bash scripts/run-tests.sh $(VENV)

test-fast: install  ## Run the unit tests only (pure logic, no processes)
	$(BIN)/pytest tests/unit -q

lint: install  ## ruff for Python, zpretty for ZCML/XML
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	find src -name '*.zcml' -o -name '*.xml' | grep -v '/locales/' | xargs $(BIN)/zpretty --check

format: install  ## Apply ruff and zpretty
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	find src -name '*.zcml' -o -name '*.xml' | grep -v '/locales/' | xargs $(BIN)/zpretty -i

protos: install  ## Regenerate the Python code from protos/
	$(BIN)/python -m detector_service.protogen

buildout:  ## The alternative deployment: buildout + bin/instance
	bash scripts/buildout.sh

bench: install models samples chainer  ## Run the benchmarks of docs/benchmarks.md
	bash bench/run.sh

clean:  ## Remove virtual environments and var/
	rm -rf $(VENV) $(CHAINER_VENV) $(VAR) bin parts develop-eggs eggs .installed.cfg
