# opspoor — everything a new machine needs is installed from here.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install system-deps demo test bench lint clean

help:
	@echo "make demo   - create .venv, install, build and scan the benign demo case"
	@echo "make test   - run the test suite"
	@echo "make bench  - run the benchmarks (fetches benign Debian photo packages into .cache/)"
	@echo "make lint   - ruff + mypy on src/"

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	# Debian packages (Chromium, Tesseract, disk tools…); as non-root it names what is missing and goes on
	bash scripts/install-system-deps.sh || echo 'warning: Debian packages missing (see above); run: sudo bash scripts/install-system-deps.sh'
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# pdqhash (Meta's C++ PDQ, the test oracle) is built from source so it links against NumPy 2.
	$(PIP) install -q --no-binary pdqhash -e '.[test,bench,lint,pdf,geo]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(PY) -m opspoor.demo

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
