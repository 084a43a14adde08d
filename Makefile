# The two set-up commands: `make run` serves the app, `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint bench-lm clean-venv

run:
	scripts/bootstrap.sh
	$(PY) -m streamlit run app.py --server.port $(PORT)

test:
	scripts/bootstrap.sh dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean-venv:
	rm -rf $(VENV)
