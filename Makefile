# studyrunner: set-up and the two everyday commands.
#   make demo   installs what is missing, then runs the demo study (synthetic cohort)
#   make test   installs what is missing, then runs the lint gates, then the test suite
#   make lint   ruff (style, bugs, complexity) and mypy (types); configured in pyproject.toml
# `make install` is idempotent: it installs Debian packages only when missing and
# rebuilds the virtual environment only when pyproject.toml or this Makefile changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
PROTOCOL ?= protocols/nsclc_ici.yaml
PYTEST_ARGS ?=

# R and the R packages from Debian (CRAN-only packages are optional: see `studyrunner doctor`),
# poppler-utils for pdftotext/pdftoppm, Pango and fonts for WeasyPrint.
DEBIAN_PACKAGES := r-base-core r-base-dev r-cran-survival r-cran-maxstat r-cran-glmnet \
	r-cran-gbm r-cran-ranger r-cran-riskregression r-cran-pec r-cran-rms r-cran-timereg \
	r-cran-prodlim r-cran-psych r-cran-mass r-cran-proc poppler-utils libpango-1.0-0 libpangoft2-1.0-0 \
	libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core

.PHONY: install system-packages demo external-demo lint test schema clean

install: system-packages $(STAMP)

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Install order matters (see DEVELOPERS.md): the CPU torch wheel first so no CUDA build is
# pulled; pyradiomics 3.0.1 builds against the already-installed numpy without isolation.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q numpy setuptools wheel versioneer cffi
	$(BIN)/pip install -q --no-build-isolation pyradiomics==3.0.1
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/studyrunner run $(PROTOCOL) --out runs/demo

# The demo's frozen radiomics model validated on a synthetic second hospital (run `make demo` first).
external-demo: install
	test -f runs/demo/model/bundle.json || $(MAKE) demo
	$(BIN)/studyrunner external runs/demo/model protocols/nsclc_ici_external.yaml --out runs/external-demo

# The gates run before the tests: a lint failure stops `make test` in seconds.
lint: install
	$(BIN)/ruff check studyrunner tests benchmarks
	$(BIN)/mypy studyrunner

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

schema: install
	$(BIN)/studyrunner schema > protocols/schema.json
	$(BIN)/studyrunner schema --results > protocols/results.schema.json
	$(BIN)/studyrunner schema --external > protocols/external.schema.json

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
