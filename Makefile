# make lab: set up .venv, make your copies of the lessons in learner/ (never overwritten)
#           and open JupyterLab on 00_welcome.ipynb there.
# make learner: add new lessons to learner/ and update the copies you never edited.
# make test: set up .venv with the test extras and run every test and notebook.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: lab test lint learner clean

lab: $(VENV)/.lab
	$(BIN)/rtlab lab

learner: $(VENV)/.lab
	$(BIN)/rtlab learner --update

test: $(VENV)/.test
	$(BIN)/pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "rtlab needs Python 3.11 or newer: $(PYTHON) is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.lab

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
