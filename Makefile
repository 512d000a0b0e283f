# Two commands matter: `make run` and `make test`. Both work on a fresh machine with only Python.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `make run` installs Trubka alone; `make test` adds the test extras (pytest, mypy, Playwright…).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: run test docs lint bench clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	# The bytecode `make run` runs (PYTHONOPTIMIZE=2), made once here rather than at each start.
	$(PY) -OO -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The shipped scenarios run unless TRUBKA_SCENARIOS (environment or .env) or ./scenarios.yaml says otherwise.
run: $(RUN_STAMP)
	@if [ -z "$$TRUBKA_SCENARIOS" ] && [ ! -f scenarios.yaml ] && ! grep -qs '^TRUBKA_SCENARIOS=' .env; then \
		export TRUBKA_SCENARIOS=examples/scenarios.yaml; fi; \
	PYTHONOPTIMIZE=2 $(PY) -m bot serve  # as deployed: docstrings and asserts left out (less memory)

test: $(STAMP) docs
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml): --strict, so a broken link or a page left out of the nav
# fails `make test` (and CI). The site goes to .site/ (gitignored).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir .site

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/webhooks.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .site
