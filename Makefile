# s2s — real-time speech-to-speech. `make help` lists the targets.
SHELL := /bin/bash
PY_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-cpu
export HF_HUB_OFFLINE ?= 1
# A portable llama.cpp build (no -march=native), same speed on these machines.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
PARLER_VENV := .venv-parler
PARLER_STAMP := $(PARLER_VENV)/.installed
# The all-in-one image's name:tag is the deploy module's image setting: the same variable, the same default.
S2S_DEPLOY_IMAGE ?= $(shell sed -n 's/^DEFAULT_IMAGE = "\(.*\)"$$/\1/p' deploy/settings.py)

.PHONY: help install run test test-fast lint bench eval client deploy-runpod destroy-runpod status-runpod parler-venv images images-cpu test-containers up clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/cpu.txt
	@command -v espeak-ng >/dev/null || echo "note: espeak-ng is missing (apt-get install espeak-ng sox) — needed by tests and the espeak TTS backend"
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -r requirements/cpu.txt
	$(PIP) install --no-deps -r requirements/no-deps.txt
	$(PIP) install --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the stack with the embedded CPU models

run: $(STAMP) ## start the whole stack locally (gateway on ws://127.0.0.1:8000/v1/realtime)
	$(VENV)/bin/s2s up $(ARGS)

test: $(STAMP) ## run the test suite (real models, real processes, offline)
	$(PY) -m pytest $(ARGS)

lint: $(STAMP) ## ruff check, ruff format --check and mypy (strict on services/common and services/gateway)
	@rc=0; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "ruff format --check ."; $(VENV)/bin/ruff format --check . || rc=1; \
	echo "mypy"; $(VENV)/bin/mypy || rc=1; \
	exit $$rc

test-fast: $(STAMP) ## the gateway's fast tier: real gateway, scripted fake stages, no models (tests/fast, < 1 min)
	$(PY) -m pytest tests/fast $(ARGS)

bench: $(STAMP) ## latency targets (voice-to-voice, stages, STT decode + WER, end of turn, 4 sessions): new vs old path (ARGS="--turns 4" for a smoke run)
	$(PY) -m bench $(ARGS)

eval: $(STAMP) ## answer quality: spoken questions (5 voices) through the stack, judged; JSON in bench/results/, table in docs/quality.md (ARGS="--row NAME:S2S_X=Y" per model choice)
	$(PY) -m bench.eval --output bench/results/eval.json --doc docs/quality.md $(ARGS)

client: $(STAMP) ## talk through the microphone (a WAV file: ARGS="--input question.wav --output reply.wav")
	$(PY) -m client $(ARGS)

deploy-runpod: $(STAMP) ## run the stack on a RunPod GPU pod (needs only RUNPOD_API_KEY; ARGS="--dry-run" shows the plan)
	$(PY) -m deploy up $(ARGS)

destroy-runpod: $(STAMP) ## terminate the pod from the last deploy
	$(PY) -m deploy down $(ARGS)

status-runpod: $(STAMP) ## status, uptime, cost and idle time left of the deployed pod
	$(PY) -m deploy status $(ARGS)

$(PARLER_STAMP): requirements/parler.txt
	test -x $(PARLER_VENV)/bin/python || $(PY_BOOT) -m venv $(PARLER_VENV)
	$(PARLER_VENV)/bin/pip install -q --upgrade pip
	$(PARLER_VENV)/bin/pip install -r requirements/parler.txt
	touch $(PARLER_STAMP)

parler-venv: $(PARLER_STAMP) ## the parler-tts TTS virtualenv (.venv-parler: ~2 min, 7.6 GB; it pins transformers 4.46.1)

images: ## build every service's CPU and CUDA images and the all-in-one image (tag: S2S_DEPLOY_IMAGE)
	for service in vad stt llm tts; do docker build -f services/$$service/Dockerfile -t s2s-$$service:cpu . || exit 1; done
	docker build -f services/gateway/Dockerfile -t s2s-gateway .
	for stage in stt llm tts; do docker build -f services/$$stage/Dockerfile.cuda -t s2s-$$stage:cuda . || exit 1; done
	docker build -f deploy/Dockerfile -t "$(S2S_DEPLOY_IMAGE)" .

# Compose needs a token to read docker-compose.yml even to build; building does not use it.
images-cpu: ## build the five CPU images that `docker compose up` runs (docker compose build)
	S2S_GATEWAY_TOKEN=$${S2S_GATEWAY_TOKEN:-unused-by-the-build} docker compose build

test-containers: $(STAMP) images-cpu ## the container tier on a real Docker engine: compose up --wait, ask through the gateway, scale stt/tts to 2, ask again, down -v
	S2S_TEST_CONTAINERS=1 $(PY) -m pytest tests/containers $(ARGS)

up: ## run the five services in containers: docker compose up --build --wait (CPU; GPU: see docs/containers.md)
	docker compose up --build --wait $(ARGS)

clean: ## remove the virtualenvs and caches
	rm -rf $(VENV) $(PARLER_VENV) .pytest_cache build *.egg-info
