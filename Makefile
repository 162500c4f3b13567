# headline-topics: run `make help` for the list of targets. Each recipe is one line.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.DEFAULT_GOAL := help
.PHONY: help venv ingest label train train-tfidf test lint ui bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q -r requirements.txt && touch $@

venv: $(VENV)/.installed ## create .venv and install the pinned requirements (run by every target)
ingest: venv ## parse all sources into data/interim/headlines.csv
	$(PY) -m pipeline.ingest
label: ingest ## weak-label headlines into data/processed/labeled.csv, print coverage per rule
	$(PY) -m pipeline.label
train: label ## ingest, label, train and evaluate the model, log to MLflow, export to models/
	$(PY) -m pipeline.train
train-tfidf: label ## train only the TF-IDF model
	$(PY) -m pipeline.train --model tfidf
test: venv ## run the test suite (shared-data tests skip when ../shared/data is absent)
	$(PY) -m pytest -q
lint: venv ## ruff over the code and tests
	$(PY) -m ruff check pipeline tests bench
ui: venv ## open the MLflow UI on the project store (http://127.0.0.1:5000)
	$(PY) -m mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000
bench: venv ## time predict: one headline (median of 5) and --input on 10,000 lines
	$(PY) bench/predict_bench.py
