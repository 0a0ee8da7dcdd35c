# Two commands do all the set-up on a fresh machine:
#   make lab   - create .venv (once) and open the lessons in JupyterLab
#   make test  - create .venv (once) and run the unit tests and every notebook (nbval)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := notebooks

.PHONY: venv lab test test-fast lint bench clean

# Re-installs only when pyproject.toml changes; the stamp makes `make venv` idempotent.
$(STAMP): pyproject.toml binder/overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[torch,tensorflow,dev]'
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

venv: $(STAMP)

# Jupyter refuses to run as root unless told; containers and lab machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=$(NOTEBOOKS) $(ROOT_FLAG)

test: venv
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

test-fast: venv
	$(BIN)/python -m pytest tests -m "not browser"

lint: venv
	$(BIN)/ruff check gradcam_widgets tests benchmarks

# The anchors compared against: tf-keras-vis, and pytorch-grad-cam without its
# torchvision/OpenCV dependencies (benchmarks/engine.py explains why).
bench: venv
	$(BIN)/python -m pip install --quiet tf-keras-vis
	$(BIN)/python -m pip install --quiet --no-deps grad-cam ttach
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/engine_keras.py

clean:
	rm -rf $(VENV) .pytest_cache
