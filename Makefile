# The two commands of the README: `make local` runs the whole service on this machine,
# `make test` runs every test tier. Both create their own virtualenv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
SAM_VENV ?= .venv-sam
PY := $(VENV)/bin/python
# The import roots Lambda gives each function: the layer's package and the functions' code.
export PYTHONPATH := layers/common:functions/api:functions/worker:functions/scheduler:.
# sam build targets Lambda's python3.12; use pyenv's when present.
PY312_DIR := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin))

.PHONY: venv sam-venv local test unit component e2e contract lint bench fuzz chaos sam-validate sam-build emails invoke events openapi api-key seed clean

venv: $(VENV)/.installed
$(VENV)/.installed: layers/common/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli
	touch $@

local: venv
	$(PY) -m local

test: venv sam-venv lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit
component: venv
	$(PY) -m pytest tests/component
e2e: venv
	$(PY) -m pytest tests/e2e
contract: venv sam-venv
	$(PY) -m pytest tests/contract

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: venv
	$(PY) -m bench

# schemathesis, every phase and check, FUZZ_EXAMPLES (100) per operation, against its own local stack
# (ports 3200/4766/9292/3201) or FUZZ_URL; prints the counts per check (docs/TEST.md).
fuzz: venv
	$(PY) -m tools.fuzz

sam-validate: sam-venv
	$(SAM_VENV)/bin/sam validate --lint

sam-build: sam-venv
	PATH="$(PY312_DIR):$$PATH" $(SAM_VENV)/bin/sam build

openapi: venv
	$(PY) -m tools.openapi

emails: venv
	$(PY) -m local.emails

# `sam local invoke -e` without Docker, against the running `make local`:
# `make invoke FN=WorkerFunction EVENT=events/msk_batch_selfmanaged.json`
invoke: venv
	$(PY) -m local.invoke "$(FN)" "$(EVENT)"

# Regenerate events/*.json (a contract test fails when they are stale).
events: venv
	$(PY) -m tools.sample_events

# Operators: `make api-key NAME=shop SCOPES=events:write STACK=notification-service`
api-key: venv
	$(PY) -m ops create-api-key --name "$(NAME)" --scopes "$(or $(SCOPES),events:write,notifications:read)" $(if $(STACK),--stack $(STACK)) $(if $(TABLE),--table $(TABLE))

# Seed the default templates into a deployed stack: `make seed STACK=notification-service`
seed: venv
	$(PY) -m ops seed-templates $(if $(STACK),--stack $(STACK)) $(if $(TABLE),--table $(TABLE))

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# Thousands of notifications through a local stack of its own while Kafka, Auth, SES/SNS and the worker fail;
# prints accepted/SENT/FAILED/EXPIRED/SKIPPED/stuck/lost/duplicates (docs/RELIABILITY.md). CHAOS_SEED=1.
chaos: venv
	$(PY) -m tools.chaos
