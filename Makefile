# Two commands do all the set-up on a fresh machine:
#   make lab   - create .venv (once) and open the lessons in JupyterLab
#   make test  - create .venv (once) and run the unit tests and every notebook (nbval)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := notebooks
# The tested version of every package (torch==2.13.0: the CPU build on these machines).
CONSTRAINTS := constraints/linux-cpu.txt
# Real architectures for tests/test_timm_zoo.py, without timm's dependencies: they would
# pull torchvision, whose PyPI build does not import beside this CPU torch (and a CUDA
# torch with it). tests/archs.py stands in for the torchvision names timm imports.
TIMM := timm==1.0.31

.PHONY: venv lab test test-fast lint bench clean constraints

# Re-installs only when one of these files changes; the stamp makes `make venv` idempotent.
# The two settings files are Binder's too (binder/postBuild installs them the same way):
# JupyterLab shuts a lesson's kernel down when its tab closes, and the server culls
# kernels left idle with no tab, so a whole course fits Binder's 2 GB.
$(STAMP): pyproject.toml $(CONSTRAINTS) binder/overrides.json binder/jupyter_server_config.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[torch,tensorflow,lab,dev]' -c $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet --no-deps $(TIMM)
	mkdir -p $(VENV)/share/jupyter/lab/settings $(VENV)/etc/jupyter/jupyter_server_config.d
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	cp binder/jupyter_server_config.json $(VENV)/etc/jupyter/jupyter_server_config.d/gradcam-widgets.json
	touch $(STAMP)

venv: $(STAMP)

# Jupyter refuses to run as root unless told; containers and lab machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=$(NOTEBOOKS) $(ROOT_FLAG)

test: venv
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

test-fast: venv
	$(BIN)/python -m pytest tests -m "not browser and not slow"

# ruff, then the type checker (mypy; its settings are in pyproject.toml).
lint: venv
	$(BIN)/ruff check gradcam_widgets tests benchmarks
	$(BIN)/mypy

# The anchors compared against: tf-keras-vis, and pytorch-grad-cam without its
# torchvision/OpenCV dependencies (benchmarks/engine.py explains why).
bench: venv
	$(BIN)/python -m pip install --quiet tf-keras-vis -c $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet --no-deps grad-cam ttach
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/engine_keras.py

# Re-pin constraints/linux-cpu.txt to pip's current resolution (then run make test).
constraints:
	$(PYTHON) constraints/update.py

clean:
	rm -rf $(VENV) .pytest_cache
