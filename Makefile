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

.PHONY: help install run test bench client deploy-runpod destroy-runpod status-runpod lint clean

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

bench: $(STAMP) ## measure voice-to-voice and per-stage latency over spoken turns
	$(PY) -m bench $(ARGS)

client: $(STAMP) ## talk to the gateway: make client ARGS="--input question.wav --output reply.wav"
	$(PY) -m client $(ARGS)

deploy-runpod: $(STAMP) ## provision the stack on a RunPod GPU pod (needs RUNPOD_API_KEY)
	$(PY) -m deploy up $(ARGS)

destroy-runpod: $(STAMP) ## terminate the pod from the last deploy
	$(PY) -m deploy down $(ARGS)

status-runpod: $(STAMP) ## status, uptime and cost of the deployed pod
	$(PY) -m deploy status $(ARGS)

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache build *.egg-info
