# Two commands do all set-up: `make demo` and `make test`. Environments are created on demand
# from the pinned locks in requirements/ and rebuilt when a lock changes.
PYTHON ?= python3.11
PIP := --disable-pip-version-check --quiet --progress-bar off
VENV := .venv
VENV_MXNET := .venv-mxnet
VENV_TF := .venv-tf
DEMO_DIR ?= .demo

.PHONY: help env test test-fast lint demo bench lock clean

help:
	@echo "make demo   run the demo on the embedded sample dataset"
	@echo "make test   lint, type-check and run every test (environments are created if missing)"
	@echo "make bench  run the benchmarks in bench/"

$(VENV)/.ready: requirements/main.txt pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP) -r requirements/main.txt
	$(VENV)/bin/pip install $(PIP) --no-deps -e .
	touch $@

# A backend environment sees training_code/ through a .pth file, as the container sees
# the script-mode source directory on its path.
$(VENV_MXNET)/.ready: requirements/mxnet.txt
	rm -rf $(VENV_MXNET)
	$(PYTHON) -m venv $(VENV_MXNET)
	$(VENV_MXNET)/bin/pip install $(PIP) -r requirements/mxnet.txt
	echo "$(CURDIR)/training_code" > "$$($(VENV_MXNET)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/imgclf-training-code.pth"
	touch $@

$(VENV_TF)/.ready: requirements/tensorflow.txt
	rm -rf $(VENV_TF)
	$(PYTHON) -m venv $(VENV_TF)
	$(VENV_TF)/bin/pip install $(PIP) -r requirements/tensorflow.txt
	echo "$(CURDIR)/training_code" > "$$($(VENV_TF)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/imgclf-training-code.pth"
	touch $@

env: $(VENV)/.ready $(VENV_MXNET)/.ready $(VENV_TF)/.ready

lint: $(VENV)/.ready
	$(VENV)/bin/ruff check app training_code tests bench
	$(VENV)/bin/mypy

test: env lint
	$(VENV)/bin/python -m pytest tests

test-fast: env
	$(VENV)/bin/python -m pytest tests -m "not slow"

demo: env
	$(VENV)/bin/imgclf sample-data $(DEMO_DIR)/digits
	$(VENV)/bin/imgclf validate $(DEMO_DIR)/digits --image-shape 3,32,32
	$(VENV)/bin/imgclf pack $(DEMO_DIR)/digits/train $(DEMO_DIR)/digits-train
	$(VENV)/bin/imgclf validate $(DEMO_DIR)/digits-train.rec --image-shape 3,32,32
	@echo "demo data in $(DEMO_DIR)/: a folder-per-class dataset and its RecordIO pack"

bench: env
	$(VENV)/bin/python bench/validate_recordio.py

lock:
	@echo "Create the environments from requirements/*.in in fresh venvs and pip freeze into requirements/*.txt"

clean:
	rm -rf $(VENV) $(VENV_MXNET) $(VENV_TF) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
