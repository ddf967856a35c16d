# Two commands do everything:  make reproduce  (the course, default profile)   make test  (unit tests + nbval, ci)
# Dependencies come from environment.yml's pip: block (the one list). With an active conda env (not base), that env
# is used; otherwise a .venv is made here with $(BOOTSTRAP_PYTHON) (Python 3.11).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PROFILE ?= default
ACTX_CHROMIUM ?= /usr/bin/chromium
BOOTSTRAP_PYTHON ?= python3
NBVAL_CELL_TIMEOUT ?= 1200

ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
PY := python
STAMP := $(CONDA_PREFIX)/.actx-installed
else
PY := .venv/bin/python
STAMP := .venv/.actx-installed
endif

.PHONY: install reproduce test unit nbval browser lab clean clean-cache requirements
.DEFAULT_GOAL := help

help:
	@echo "make reproduce [PROFILE=ci|default|full]   run every notebook with papermill (executed copies in build/notebooks/)"
	@echo "make test                                  unit tests, the notebooks under the ci profile with nbval, the browser test"
	@echo "make browser                               JupyterLab driven by Chromium: notebook 06 (ci) and its sliders"
	@echo "make lab                                   open the course in JupyterLab"
	@echo "make clean | clean-cache                   remove build/ | remove data/cache/ (computed artefacts)"

# The pip: block of environment.yml, as a requirements file (generated; never edited by hand).
build/requirements.txt: environment.yml
	@mkdir -p build
	@awk '/^[^[:space:]]/{f=0} /^[[:space:]]*- pip:/{f=1;next} f&&/^[[:space:]]*- /{sub(/^[[:space:]]*- /,"");sub(/[[:space:]]+#.*/,"");print}' $< > $@
	@test -s $@ || { echo "environment.yml has no pip: block" >&2; exit 1; }

# The "pip --no-deps" block at the end of environment.yml (commented lines "#   - package==version"): packages
# installed without their declared dependencies (mediapipe: see there).
build/requirements-nodeps.txt: environment.yml
	@mkdir -p build
	@awk '/^# pip --no-deps:/{f=1;next} f&&!/^#/{f=0} f&&/^#[[:space:]]+- /{sub(/^#[[:space:]]+- /,"");sub(/[[:space:]]+#.*/,"");print}' $< > $@

requirements: build/requirements.txt build/requirements-nodeps.txt

$(STAMP): build/requirements.txt build/requirements-nodeps.txt pyproject.toml
	@if [ "$(PY)" = ".venv/bin/python" ] && [ ! -x .venv/bin/python ]; then \
	  echo "making .venv with $$($(BOOTSTRAP_PYTHON) --version)"; $(BOOTSTRAP_PYTHON) -m venv .venv; fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r build/requirements.txt
	@if [ -s build/requirements-nodeps.txt ]; then echo "$(PY) -m pip install --quiet --no-deps -r build/requirements-nodeps.txt"; \
	  $(PY) -m pip install --quiet --no-deps -r build/requirements-nodeps.txt; fi
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name actx --display-name "Python (actx)"
	@touch $@

install: $(STAMP)

reproduce: install
	$(PY) -m actx.course run --profile $(PROFILE)

unit: install
	$(PY) -m pytest tests

# nbval re-executes the ci-profile copies that papermill made (parameters injected there) and compares the cells
# marked NBVAL_CHECK_OUTPUT with papermill's run: those cells must be deterministic and independent of caches.
nbval: install
	$(PY) -m actx.course run --profile ci
	$(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-kernel-name actx \
	  --nbval-cell-timeout $(NBVAL_CELL_TIMEOUT) --nbval-sanitize-with .ci/nbval_sanitize.cfg build/notebooks/ci

# JupyterLab in Chromium (tests/browser): runs notebook 06 (ci) in the browser and moves a slider. After nbval, so
# the ci benchmark and features are cached. Without Chromium it is skipped with a line that says so, unless
# ACTX_REQUIRE_BROWSER is set (.ci/run sets it, after installing Chromium).
browser: install
	@if [ -x "$(ACTX_CHROMIUM)" ]; then \
	  echo "browser test: JupyterLab in $$($(ACTX_CHROMIUM) --version 2>/dev/null)"; \
	  ACTX_CHROMIUM="$(ACTX_CHROMIUM)" $(PY) -m pytest -p no:cacheprovider -m browser -rs tests/browser; \
	elif [ -n "$${ACTX_REQUIRE_BROWSER:-}" ]; then \
	  echo "browser test: no Chromium at $(ACTX_CHROMIUM), and ACTX_REQUIRE_BROWSER is set; install it with" \
	    "'apt-get install chromium' (Debian), or set ACTX_CHROMIUM to a Chromium executable" >&2; exit 1; \
	else \
	  echo "browser test SKIPPED: no Chromium at $(ACTX_CHROMIUM); to run it, install it with" \
	    "'sudo apt-get install chromium' (Debian), or set ACTX_CHROMIUM to a Chromium executable"; \
	fi

test: unit nbval browser

lab: install
	$(PY) -m jupyter lab notebooks/

clean:
	rm -rf build

clean-cache:
	rm -rf data/cache
