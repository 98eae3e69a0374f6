# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install the package, run the demo
#   make test   same set-up, then the whole test suite
# Conda users: `conda env create -f environment.yml`, then `python -m dcs_lib demo` / `make test VENV=$CONDA_PREFIX`.

VENV ?= .venv
PY := $(VENV)/bin/python
# Set TORCH to install a specific build first, e.g. make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?=
ARGS ?=

.PHONY: demo test setup clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install -q $(TORCH); fi
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m dcs_lib demo $(ARGS)

test: $(VENV)/.installed
	TQDM_DISABLE=1 DCS_SMOKE=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest tests notebooks --nbval-lax $(ARGS)

clean:
	rm -rf runs .pytest_cache .hypothesis
