# headline-topics: run `make help` for the list of targets. Each recipe is one line.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
LABEL ?= crime
PORT ?= 5001
MODEL ?= models:/headline-topic@champion
MASTER ?= local[*]

.DEFAULT_GOAL := help
.PHONY: help venv lock ingest label review train train-tfidf train-kobert train-ensemble propose promote compare card test lint ui bench serve score bench-serve repair-store

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q -r requirements.txt && touch $@

venv: $(VENV)/.installed ## create .venv and install the pinned requirements (run by every target)
lock: venv ## re-pin requirements.txt from the current .venv (after adding a dependency)
	{ sed -n '1,2p' requirements.txt; $(PY) -m pip freeze | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock && mv requirements.lock requirements.txt
ingest: venv ## parse all sources into data/interim/headlines.csv
	$(PY) -m pipeline.ingest
label: ingest ## weak-label headlines into data/processed/labeled.csv, print coverage per rule
	$(PY) -m pipeline.label --report
review: venv ## label the most useful headlines by hand (audit suspects, uncertain ones)
	$(PY) -m pipeline.review
propose: venv ## propose rule patterns for LABEL (default crime) from the pool and the current model, for review
	$(PY) -m pipeline.propose --label $(LABEL) --seed-neighbours
train: label ## ingest, label, train TF-IDF, KoBERT and their ensemble, log to MLflow, export, promote the champion
	$(PY) -m pipeline.train --model tfidf && $(PY) -m pipeline.train --model kobert && $(PY) -m pipeline.train --model ensemble && $(PY) -m pipeline.promote
train-tfidf: label ## train only the TF-IDF model, then promote
	$(PY) -m pipeline.train --model tfidf && $(PY) -m pipeline.promote
train-kobert: label ## train only the KoBERT model (offline: builds a local KoBERT-style model first), then promote
	$(PY) -m pipeline.train --model kobert && $(PY) -m pipeline.promote
train-ensemble: label ## combine the trained TF-IDF and KoBERT models (weights fitted on the annotations' tune part), then promote
	$(PY) -m pipeline.train --model ensemble && $(PY) -m pipeline.promote
promote: venv ## crown the best registered model (all gold, paired bootstrap, no gold source worse) as champion
	$(PY) -m pipeline.promote
compare: venv ## latest run of each model kind side by side, on all gold and per gold file and source
	$(PY) -m pipeline.compare
card: venv ## write MODEL_CARD.md from the latest MLflow runs, the champion and the bench results
	$(PY) -m pipeline.card
test: venv ## run the test suite (shared-data tests skip when ../shared/data is absent)
	$(PY) -m pytest -q
lint: venv ## ruff over the code and tests
	$(PY) -m ruff check pipeline tests bench
repair-store: venv ## repair a half-created mlflow.db (an empty one is moved aside and created anew)
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PY) -m pipeline.tracking repair-store
ui: venv ## open the MLflow UI on the project store (http://127.0.0.1:5000)
	@echo "training runs: $$(MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PY) -m pipeline.tracking runs-url)" && $(PY) -m mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000
bench: venv ## time predict per saved model (cold headline, --input, in process, peak memory) -> bench/results/
	$(PY) bench/predict_bench.py
serve: venv ## serve the champion with MLflow's scoring server, bounded, on http://127.0.0.1:$(PORT) (make serve PORT=5001)
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PY) -m pipeline.serve --model $(MODEL) --host 127.0.0.1 --port $(PORT)
score: venv ## label INPUT (CSV, Parquet, JSON Lines, text) into OUTPUT (Parquet) on Spark (MASTER=local[*])
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PY) -m pipeline.score "$(INPUT)" "$(OUTPUT)" --model $(MODEL) --master "$(MASTER)"
bench-serve: venv ## headlines/s of the served champion (1 and 100 rows/request) and of Spark vs predict --input on 1M lines
	$(PY) bench/serve_bench.py
