# Two commands do all set-up: `make demo` and `make test`. Environments are created on demand
# from the pinned locks in requirements/ and rebuilt when a lock changes.
PYTHON ?= python3.11
PIP := --disable-pip-version-check --quiet --progress-bar off
VENV := .venv
VENV_MXNET := .venv-mxnet
VENV_TF := .venv-tf
VENV_CONTAINER := .venv-container
WHEELHOUSE := .wheelhouse
DEMO_DIR ?= .demo
# Python 3.8 for the container stack: the first of python3.8 on PATH and pyenv's 3.8 that runs
# (a pyenv shim may be on PATH without 3.8 being selected). Empty when there is none.
PYTHON38 ?= $(firstword $(foreach p,$(shell command -v python3.8) $(wildcard /root/.pyenv/versions/3.8*/bin/python3.8),\
  $(if $(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null && echo ok),$(p))))

.PHONY: help env test test-fast lint demo bench synth diagrams lock clean mutate

help:
	@echo "make demo   run the demo on the embedded sample dataset"
	@echo "make test   lint, type-check and run every test (environments are created if missing)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make synth  synthesize the CDK app into cdk.out/ (offline, no Docker)"
	@echo "make mutate mutation testing of the dataset core, the rules, the hyperparameters and serving"

$(VENV)/.deps: requirements/main.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP) -r requirements/main.txt
	touch $@

$(VENV)/.ready: $(VENV)/.deps pyproject.toml
	$(VENV)/bin/pip install $(PIP) --no-deps -e .
	touch $@

# A backend environment sees training_code/ through a .pth file, as the container sees
# the script-mode source directory on its path. $(call backend_env,DIR,LOCK[,PYTHON_VARIABLE])
# defines its rule; the interpreter is $(PYTHON) unless a variable is named.
define backend_env
$(1)/.ready: $(2)
	@test -n "$$($(or $(3),PYTHON))" || { echo "no interpreter for $(1): set $(or $(3),PYTHON)" >&2; exit 1; }
	rm -rf $(1)
	$$($(or $(3),PYTHON)) -m venv $(1)
	$(1)/bin/pip install $$(PIP) -r $(2)
	$(1)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > $(1)/.site
	echo "$$(CURDIR)/training_code" > "$$$$(cat $(1)/.site)/imgclf-training-code.pth"
	touch $$@
endef
$(eval $(call backend_env,$(VENV_MXNET),requirements/mxnet.txt))
$(eval $(call backend_env,$(VENV_TF),requirements/tensorflow.txt))
# The container stack: Python 3.8 with what the AWS MXNet 1.9 containers run (numpy 1.19.5,
# Pillow 9.5.0, mxnet 1.9.1, no OpenCV). The offline harness runs the pack job with it, and the
# tests run the serving handlers on it. Built only where a Python 3.8 is found.
$(eval $(call backend_env,$(VENV_CONTAINER),requirements/container.txt,PYTHON38))

# Wheels of the Lambda functions' requirements for their platform (python3.14, arm64), so that
# bundling at synth needs no network and no Docker.
$(WHEELHOUSE)/.ready: lambdas/requirements.txt $(VENV)/.deps
	rm -rf $(WHEELHOUSE)
	$(VENV)/bin/pip download $(PIP) --dest $(WHEELHOUSE) --only-binary=:all: --implementation cp \
	  --python-version 3.14 --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
	  -r lambdas/requirements.txt
	touch $@

env: $(VENV)/.ready $(VENV_MXNET)/.ready $(VENV_TF)/.ready $(WHEELHOUSE)/.ready $(if $(PYTHON38),$(VENV_CONTAINER)/.ready)

lint: $(VENV)/.ready
	$(VENV)/bin/ruff check app infra lambdas training_code tests bench
	$(VENV)/bin/mypy

# Both cores (pytest-xdist): the suite is mostly TensorFlow and MXNet jobs in their own processes,
# about 20 minutes on a 2-core machine. Each file runs on one worker, in
# order: a module's fixtures are built once, and tests that continue an earlier one's state (the
# e2e demo's second run, then its gate) see it
test: env lint
	$(VENV)/bin/python -m pytest tests -n 2 --dist loadfile

# The quick tests in the main environment only: builds .venv alone, and skips a test that needs
# another environment that is not built yet (tests/interop/conftest.py, missing_environment)
test-fast: $(VENV)/.ready
	IMGCLF_TEST_FAST=1 $(VENV)/bin/python -m pytest tests -m "not slow and not mxnet and not tensorflow" -n 2

demo: env
	$(VENV)/bin/imgclf demo --work $(DEMO_DIR)

synth: $(VENV)/.ready $(WHEELHOUSE)/.ready
	rm -rf cdk.out
	CDK_OUTDIR=cdk.out $(VENV)/bin/python -m infra.app
	$(VENV)/bin/cfn-lint cdk.out/*.template.json
	@echo "templates in cdk.out/ (cdk-nag AwsSolutions and cfn-lint clean)"

diagrams: $(VENV)/.ready
	$(VENV)/bin/python -m infra.diagram

bench: env
	$(VENV)/bin/python bench/validate_recordio.py
	$(VENV)/bin/python bench/validate_shards.py
	$(VENV_MXNET)/bin/python bench/mxnet_backend.py
	$(VENV_TF)/bin/python bench/tf_backend.py

# Mutation testing (not in CI; docs/ARCHITECTURE.md says what it covers and the last kill rates).
# mutmut mutates a copy of the tree in $(MUTATE_DIR)/, where training_code/'s packages sit at the top
# level as they are imported, so the working tree is never changed; [tool.mutmut] in pyproject.toml
# names what is mutated and the quick tests that run. One worker unless MUTATE_JOBS says more;
# MUTANTS='lambdas.gate.*' narrows a run. Results stay in $(MUTATE_DIR)/mutants: a rerun tests only
# what changed; `cd $(MUTATE_DIR) && ../$(VENV)/bin/mutmut show NAME` shows a surviving mutant.
MUTATE_DIR := .mutate
MUTATE_JOBS ?= 1
mutate: $(VENV)/.ready
	mkdir -p $(MUTATE_DIR)
	git ls-files -co --exclude-standard -z | xargs -0 ls -d 2>/dev/null | tar -cf - -T - | tar -xpf - -C $(MUTATE_DIR)
	rm -rf $(MUTATE_DIR)/image_dataset $(MUTATE_DIR)/image_training $(MUTATE_DIR)/imgclf_core
	cp -Rp training_code/image_dataset training_code/image_training training_code/imgclf_core $(MUTATE_DIR)/
	cd $(MUTATE_DIR) && ../$(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	@cd $(MUTATE_DIR) && ../$(VENV)/bin/mutmut results --all true | awk -F': ' '\
	  $$2 != "not checked" { m = $$1; sub(/^ +/, "", m); sub(/\.x.*$$/, "", m); n[m]++; s[m, $$2]++; t[$$2]++; all++ } \
	  END { printf "%-38s %7s %7s %8s %8s %6s\n", "module", "killed", "timeout", "survived", "no tests", "rate"; \
	        for (m in n) printf "%-38s %7d %7d %8d %8d %5.1f%%\n", m, s[m, "killed"], s[m, "timeout"], \
	          s[m, "survived"], s[m, "no tests"], 100 * (s[m, "killed"] + s[m, "timeout"]) / n[m]; \
	        if (all) printf "%-38s %7d %7d %8d %8d %5.1f%%\n", "(all tested)", t["killed"], t["timeout"], \
	          t["survived"], t["no tests"], 100 * (t["killed"] + t["timeout"]) / all }'

# Re-resolve requirements/NAME.in into the lock requirements/NAME.txt (keeps its header line);
# the container lock with Python 3.8, when there is one.
lock:
	set -e; for spec in main:$(PYTHON) mxnet:$(PYTHON) tensorflow:$(PYTHON) $(if $(PYTHON38),container:$(PYTHON38)); do \
	  name=$${spec%%:*}; python=$${spec#*:}; \
	  rm -rf .lock-venv; $$python -m venv .lock-venv; \
	  .lock-venv/bin/pip install $(PIP) -r requirements/$$name.in; \
	  { head -n 1 requirements/$$name.txt; .lock-venv/bin/pip freeze | grep -v -i '^imgclf'; } > requirements/$$name.txt.new; \
	  mv requirements/$$name.txt.new requirements/$$name.txt; \
	done; rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(VENV_MXNET) $(VENV_TF) $(VENV_CONTAINER) $(WHEELHOUSE) $(DEMO_DIR) .lock-venv .build cdk.out .pytest_cache .mypy_cache .ruff_cache .mutate mutants .bench
