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
