# The two commands people use: `make run` (one nightly run now) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_EXTRA_LOGGERS ?= recsys_core
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: run test lint venv clean-data api

# setuptools >= 84 warns on every editable install that folders named like a package may shadow
# it: advice for package authors, and a confusing first screen for someone running `make run`.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## one run of the nightly flow on ml-100k (RECSYS_SOURCE=/path/ml-100k.zip offline)
	$(BIN)/recsys run

test: $(STAMP)  ## the whole suite (real-data tests skip when ../shared/datasets is absent)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check recsys_core data_checks tasks flows recsys_cli recsys_api tests benchmarks

API_HOST ?= 127.0.0.1
API_PORT ?= 8000

api: $(STAMP)  ## the HTTP API and page on http://$(API_HOST):$(API_PORT)/ (follows new nights, no restart)
	$(BIN)/recsys api --host $(API_HOST) --port $(API_PORT)

clean-data:
	rm -rf data

# Scheduled runs need a real Prefect server (the temporary one of `make run` has no scheduler).
# Three terminals: `make server`, then `make deploy` once, and `make worker`. UI: http://127.0.0.1:4200
PREFECT_PORT ?= 4200
PREFECT_ENV  := PREFECT_HOME=$(CURDIR)/.prefect PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api

.PHONY: server deploy worker

server: $(STAMP)  ## Prefect server + UI on 127.0.0.1:$(PREFECT_PORT), state in .prefect/
	$(PREFECT_ENV) $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

deploy: $(STAMP)  ## pool `local` (process) if missing, then the deployments of prefect.yaml
	$(PREFECT_ENV) $(BIN)/prefect work-pool inspect local >/dev/null 2>&1 \
		|| $(PREFECT_ENV) $(BIN)/prefect work-pool create local --type process
	$(PREFECT_ENV) $(BIN)/prefect --no-prompt deploy --all $(if $(RECSYS_SOURCE),--param source=$(RECSYS_SOURCE))

worker: $(STAMP)  ## runs the scheduled (and triggered) flow runs of pool `local`
	$(PREFECT_ENV) $(BIN)/prefect worker start --pool local
