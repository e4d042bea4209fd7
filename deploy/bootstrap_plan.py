"""The no-own-image path, as data: what the pod installs on the public base image and how the installer starts.

Pure: the deploy decides the install steps, the start command and the installer's environment here; ``bootstrap.py``
(in the pod) runs them; ``upload.py`` packs and sends the project.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import DeploySettings

BOOTSTRAP_SOURCE = Path(__file__).with_name("bootstrap.py")
# The container's command: the installer's text comes from the environment (no file of ours is in the base image).
# One shell-style string: RunPod passes `args` to the image's entrypoint (runpod/pytorch has none, only CMD).
LAUNCHER = "python3 -c \"import base64,os,zlib;exec(zlib.decompress(base64.b64decode(os.environ['S2S_BOOTSTRAP'])))\""
STAGE_PORT_BASE = 8001  # the four stage services listen on 8001-8004 inside the pod, as in the all-in-one image

VENV = '"$S2S_HOME/venv"'
PARLER_VENV = '"$S2S_HOME/venv-parler"'
# Keep the base image's PyTorch (and its CUDA libraries): a second copy would be a multi-GB download at every start.
PIN_BASE_TORCH = (
    'python3 -m pip freeze | grep -iE "^(torch|torchaudio|torchvision|triton|nvidia-[a-z0-9-]+)==" '
    '> "$S2S_HOME/pins.txt" || true'
)

GPU_STEPS = (
    f"python3 -m venv --system-site-packages {VENV}",
    PIN_BASE_TORCH,
    f'{VENV}/bin/pip install -q -c "$S2S_HOME/pins.txt" "$S2S_SRC[vad,stt,llm,llm-transformers]"',
    f'{VENV}/bin/pip install -q --no-deps -r "$S2S_SRC/requirements/no-deps.txt"',
    # parler-tts pins transformers 4.46.1: its own virtualenv, on the same base PyTorch (parler.txt's torch pin
    # only keeps torch and torchaudio together, which the base image already does)
    f"python3 -m venv --system-site-packages {PARLER_VENV}",
    'grep -viE "^(torch|torchaudio)==" "$S2S_SRC/requirements/parler.txt" > "$S2S_HOME/parler.txt"',
    f'{PARLER_VENV}/bin/pip install -q -c "$S2S_HOME/pins.txt" -r "$S2S_HOME/parler.txt"',
    f'{PARLER_VENV}/bin/pip install -q --no-deps "$S2S_SRC"',
)
CPU_STEPS = (
    # llama-cpp-python has no binary wheel: a compiler and cmake, from the base image or its package manager
    "command -v cc >/dev/null && command -v cmake >/dev/null || "
    "(apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential cmake >/dev/null)",
    f"python3 -m venv {VENV}",
    f'CMAKE_ARGS="-DGGML_NATIVE=OFF" {VENV}/bin/pip install -q "$S2S_SRC[vad,stt,llm,tts,cpu]"',
    f'{VENV}/bin/pip install -q --no-deps -r "$S2S_SRC/requirements/no-deps.txt"',
)
START = (
    f'exec {VENV}/bin/s2s up --host "$S2S_GATEWAY_HOST" --port "$S2S_GATEWAY_PORT" --stage-port-base {STAGE_PORT_BASE}'
)
# CTranslate2 (faster-whisper on CUDA) loads cuBLAS and cuDNN by name: point it at the copies PyTorch's wheels brought.
CUDA_LIBS = (
    "for d in /usr/local/lib/python3*/dist-packages/nvidia/*/lib /usr/lib/python3*/dist-packages/nvidia/*/lib "
    '"$S2S_HOME"/venv/lib/python3*/site-packages/nvidia/*/lib; do '
    'if [ -d "$d" ]; then LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; fi; done; export LD_LIBRARY_PATH; '
)
START_ENV = {
    "gpu": {
        "S2S_PROFILE": "gpu",
        "S2S_RUNNER_TTS_PYTHON": "$S2S_HOME/venv-parler/bin/python",
        "HF_HOME": "$S2S_HOME/cache/huggingface",
    },
    "cpu": {"S2S_PROFILE": "cpu", "HF_HOME": "$S2S_HOME/cache/huggingface"},
}


@dataclass(frozen=True)
class BootstrapPlan:
    steps: tuple[str, ...]
    start: str
    wait_s: float

    def as_json(self) -> str:
        return json.dumps({"steps": list(self.steps), "start": self.start, "wait_s": self.wait_s})


def plan_for(settings: DeploySettings) -> BootstrapPlan:
    """The built-in install for ``settings.install``, or the user's own steps and start command."""
    steps = tuple(settings.install_steps) or (GPU_STEPS if settings.install == "gpu" else CPU_STEPS)
    if settings.start_command:
        start = settings.start_command
    else:
        exports = " ".join(f'{key}="{value}"' for key, value in START_ENV[settings.install].items())
        start = f"{CUDA_LIBS if settings.install == 'gpu' else ''}export {exports}; {START}"
    return BootstrapPlan(steps, start, settings.bootstrap_wait_s)


def packed_bootstrap(source: str) -> str:
    """The installer's text as it travels in the environment (compressed: env values are best kept small)."""
    return base64.b64encode(zlib.compress(source.encode(), 9)).decode("ascii")


def bootstrap_env(plan: BootstrapPlan, project_sha256: str, source: str) -> dict[str, str]:
    return {
        "S2S_BOOTSTRAP": packed_bootstrap(source),
        "S2S_BOOTSTRAP_SHA256": project_sha256,
        "S2S_BOOTSTRAP_PLAN": plan.as_json(),
    }


def idle_env(settings: DeploySettings, api_url: str, api_key: str) -> dict[str, str]:
    """What the pod needs to end itself: the gateway's idle shutdown, and the installer when nobody finishes it."""
    env = {"S2S_GATEWAY_IDLE_SHUTDOWN_S": f"{settings.idle_minutes * 60:g}", "S2S_GATEWAY_RUNPOD_API_URL": api_url}
    if settings.idle_key == "deploy" and (settings.idle_minutes > 0 or not settings.own_image):
        env["S2S_GATEWAY_RUNPOD_API_KEY"] = api_key
    return env
