# The two commands of the README: `make local` runs the whole service on this machine,
# `make test` runs every test tier. Both create their own virtualenv first.
# Lambda runs python3.13 (template.yaml's Runtime), so the tests, `make local` and `sam build` run the same minor
# version when this machine has it: python3.13 on PATH (a pyenv shim counts only if it runs), else pyenv's 3.13.
# Without one they fall back to python3.11 or python3, with a warning.
LAMBDA_PYTHON := 3.13
_runs = $(if $(shell "$(1)" -c "" 2>/dev/null && echo yes),$(1))
LAMBDA_PYTHON_BIN := $(firstword $(foreach p,$(shell command -v python$(LAMBDA_PYTHON)) \
  $(wildcard $(HOME)/.pyenv/versions/$(LAMBDA_PYTHON)*/bin/python$(LAMBDA_PYTHON)),$(call _runs,$(p))))
PYTHON ?= $(or $(LAMBDA_PYTHON_BIN),$(shell command -v python3.11 || command -v python3))
PYTHON_VERSION := $(shell "$(PYTHON)" -c "import platform; print(platform.python_version())" 2>/dev/null)
ifneq ($(basename $(PYTHON_VERSION)),$(LAMBDA_PYTHON))
$(warning WARNING: Lambda runs python$(LAMBDA_PYTHON), but this uses Python $(or $(PYTHON_VERSION),?) ($(PYTHON)); \
  install python$(LAMBDA_PYTHON) (pyenv install $(LAMBDA_PYTHON)) to test what Lambda runs)
endif
VENV ?= .venv
SAM_VENV ?= .venv-sam
PY := $(VENV)/bin/python
# The import roots Lambda gives each function: the layer's package and the functions' code.
export PYTHONPATH := layers/common:functions/api:functions/worker:functions/scheduler:functions/feedback:functions/websocket:.
# sam build (BuildMethod python3.13) needs python3.13 on PATH: the one found above.
LAMBDA_PYTHON_DIR := $(patsubst %/,%,$(dir $(LAMBDA_PYTHON_BIN)))

.PHONY: venv sam-venv browser-deps screenshots python-version local test unit component e2e contract lint bench fuzz smoke chaos sam-validate sam-build deploy align-aliases emails invoke events openapi api-key seed clean

# The marker names the interpreter's version, so another Python (python3.13 installed later, say) rebuilds the venv.
venv: $(VENV)/.installed-$(PYTHON_VERSION)
$(VENV)/.installed-$(PYTHON_VERSION): layers/common/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

# Pinned: the contract tier reads SAM's translation with this CLI's aws-sam-translator (local/sam.py), so a new
# release cannot change what the tests see unannounced. The marker names the version, so a new pin reinstalls.
SAM_CLI_VERSION := 1.170.0
sam-venv: $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
$(SAM_VENV)/.installed-$(SAM_CLI_VERSION):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

# The field's static analysis of template.yaml and SAM's translation (tests/contract/test_static_analysis.py):
# cfn-lint with cfn-lint-serverless's rules, and checkov. A virtualenv of their own, since checkov pins many
# packages that the project's and the SAM CLI's virtualenvs need at other versions. Pinned, so a new release cannot
# fail `make test` unannounced (cfn-lint at the SAM CLI's version); the marker names the pins, so a new pin
# reinstalls. From PyPI only; about a minute from scratch.
SCAN_VENV ?= .venv-scan
CFN_LINT_VERSION := 1.58.0
CFN_LINT_SERVERLESS_VERSION := 0.3.6
CHECKOV_VERSION := 3.3.30
scan-venv: $(SCAN_VENV)/.installed-$(CFN_LINT_VERSION)-$(CFN_LINT_SERVERLESS_VERSION)-$(CHECKOV_VERSION)
$(SCAN_VENV)/.installed-$(CFN_LINT_VERSION)-$(CFN_LINT_SERVERLESS_VERSION)-$(CHECKOV_VERSION):
	$(PYTHON) -m venv --clear $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q cfn-lint==$(CFN_LINT_VERSION) cfn-lint-serverless==$(CFN_LINT_SERVERLESS_VERSION) \
	  checkov==$(CHECKOV_VERSION)
	touch $@

# Browser tests drive Debian's chromium through Playwright (no browser download from PyPI or a CDN). As root it is
# installed with apt-get on a fresh machine; otherwise install it yourself or point CHROMIUM at a Chromium.
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	else echo "browser tests need Chromium at $(CHROMIUM): apt-get install chromium (or set CHROMIUM)" >&2; exit 1; fi

local: venv sam-venv
	$(PY) -m local

test: python-version venv sam-venv scan-venv browser-deps lint
	$(PY) -m pytest

python-version:
	@echo "Python $(PYTHON_VERSION) (Lambda runtime python$(LAMBDA_PYTHON)): $(PYTHON)"

unit: venv
	$(PY) -m pytest tests/unit
component: venv
	$(PY) -m pytest tests/component
e2e: venv browser-deps
	$(PY) -m pytest tests/e2e
# The console's screenshots in docs/console/ (docs/CONSOLE.md), taken by its browser tests.
screenshots: venv browser-deps
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(PY) -m pytest tests/e2e/test_console_browser.py
contract: venv sam-venv scan-venv
	$(PY) -m pytest tests/contract

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_layering.py

bench: venv
	$(PY) -m bench

# schemathesis, every phase and check, FUZZ_EXAMPLES (100) per operation, against its own local stack
# (ports 3200/4766/9292/3201) or FUZZ_URL; prints the counts per check (docs/TEST.md).
fuzz: venv
	$(PY) -m tools.fuzz

# A deployed stack end to end over HTTPS, step by step (tools/smoke.py): `make smoke URL=<ApiUrl> KEY=<key>
# EMAIL=<address>`; ORIGIN= one of CorsAllowedOrigins when they are listed, USER_ID= the recipient's user id.
# The key reaches the tool in its environment, not on a command line that make or ps would show.
smoke: venv
	@test -n "$(URL)" -a -n "$(KEY)" -a -n "$(EMAIL)" || { echo "usage: make smoke URL=https://… KEY=… EMAIL=…" >&2; exit 2; }
	@SMOKE_KEY="$(KEY)" $(PY) -m tools.smoke --url "$(URL)" --email "$(EMAIL)" $(if $(ORIGIN),--origin "$(ORIGIN)") $(if $(USER_ID),--user-id "$(USER_ID)")

sam-validate: sam-venv
	$(SAM_VENV)/bin/sam validate --lint

sam-build: sam-venv
	$(if $(LAMBDA_PYTHON_DIR),PATH="$(LAMBDA_PYTHON_DIR):$$PATH") $(SAM_VENV)/bin/sam build

# Deploy to AWS: `make deploy [STACK=notification-service] [CONFIG_ENV=default] [ARGS="--parameter-overrides …"]`.
# sam deploy, then every alias moved to a version of its function's $LATEST where a change of parameter values
# alone published none (SAM hashes references, not values: ops/aliases.py, docs/DEPLOY.md#upgrade).
deploy: venv sam-build
	$(SAM_VENV)/bin/sam deploy --config-env "$(or $(CONFIG_ENV),default)" $(if $(STACK),--stack-name "$(STACK)") $(ARGS)
	$(PY) -m ops align-aliases --stack "$(or $(STACK),notification-service)"

# `make align-aliases STACK=… [CHECK=1]`: the step above on its own (CHECK=1 reports and exits 1 if one lags).
align-aliases: venv
	$(PY) -m ops align-aliases --stack "$(or $(STACK),notification-service)" $(if $(CHECK),--check)

openapi: venv
	$(PY) -m tools.openapi

# `make emails TO=demo-user-1@example.com LAST=5`: the emails moto accepted (its SES store, by recipient).
emails: venv
	$(PY) -m local.emails $(if $(TO),--to "$(TO)") $(if $(LAST),--last $(LAST))

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
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# Thousands of notifications through a local stack of its own while Kafka, Auth, SES/SNS and the worker fail;
# prints accepted/SENT/FAILED/EXPIRED/SKIPPED/stuck/lost/duplicates (docs/RELIABILITY.md). CHAOS_SEED=1.
chaos: venv
	$(PY) -m tools.chaos
