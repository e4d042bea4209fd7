"""``s2s``: run the whole speech-to-speech stack locally (the embedded CPU models by default)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from rich.console import Console

from services.gateway.app import is_loopback
from services.runner.supervisor import Child, ChildDied, Supervisor

STAGES = ("vad", "stt", "llm", "tts")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plan(host: str, port: int, stage_port_base: int, token: str | None) -> list[Child]:
    ports = {stage: (stage_port_base + i if stage_port_base else free_port()) for i, stage in enumerate(STAGES)}
    children = [
        Child(
            stage,
            f"services.{stage}",
            ports[stage],
            {f"S2S_{stage.upper()}_PORT": str(ports[stage]), f"S2S_{stage.upper()}_HOST": "127.0.0.1"},
            python=os.environ.get(f"S2S_RUNNER_{stage.upper()}_PYTHON") or sys.executable,
        )
        for stage in STAGES
    ]
    gateway_env = {"S2S_GATEWAY_HOST": host, "S2S_GATEWAY_PORT": str(port)}
    gateway_env.update(
        {f"S2S_GATEWAY_{stage.upper()}_URL": f"ws://127.0.0.1:{ports[stage]}/v1/{stage}" for stage in STAGES}
    )
    if token:
        gateway_env["S2S_GATEWAY_TOKEN"] = token
    return [*children, Child("gateway", "services.gateway", port, gateway_env)]


def endpoint(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"ws://{shown}:{port}/v1/realtime"


async def run_stack(args: argparse.Namespace, console: Console) -> int:
    supervisor = Supervisor(plan(args.host, args.port, args.stage_port_base, args.token), console, args.health_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    try:
        await supervisor.start()
        console.print("Starting vad, stt, llm, tts and gateway (models load on first start; this can take a minute)…")
        ready = asyncio.create_task(supervisor.wait_healthy())
        done, _ = await asyncio.wait({ready, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            ready.cancel()
            console.print("Stopping.")
            return 130
        ready.result()
        url = endpoint(args.host, args.port)
        console.print(f"\n[bold green]ready: {url}[/]")
        token_flag = " --token $S2S_GATEWAY_TOKEN" if args.token else ""
        http_root = f"http://{url.split('//')[1].split('/', 1)[0]}"
        console.print(
            "Talk to it:\n"
            f"  through your microphone:  .venv/bin/python -m client --url {url}{token_flag}   (or: make client)\n"
            f"  in a browser:             {http_root}/\n"
            f"  speak a WAV file:         .venv/bin/python -m client --url {url}{token_flag} --input question.wav --output reply.wav\n"
            '  make a question:          espeak-ng -g 5 -w question.wav "What is the capital of France?"\n'
            f"  any OpenAI Realtime client: base URL {http_root}/v1  (model name is ignored)\n"
            "Press Ctrl-C to stop.\n"
        )
        watcher = asyncio.create_task(supervisor.watch())
        done, _ = await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            watcher.result()
        watcher.cancel()
        console.print("Stopping.")
        return 0
    except ChildDied as died:
        console.print(f"[bold red]error:[/] {died}")
        return 1
    except TimeoutError as err:
        console.print(f"[bold red]error:[/] {err}")
        return 1
    finally:
        stopper.cancel()
        await supervisor.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="s2s", description="Run the speech-to-speech stack locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start VAD, STT, LLM, TTS and the gateway; Ctrl-C stops them all",
        description="Start the five services. A stage can run from another virtualenv: S2S_RUNNER_<STAGE>_PYTHON=/path/to/python "
        "(e.g. S2S_RUNNER_TTS_PYTHON=.venv-parler/bin/python for parler-tts).",
    )
    up.add_argument("--host", default="127.0.0.1", help="gateway address (default 127.0.0.1; others need --token)")
    up.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    up.add_argument(
        "--stage-port-base",
        type=int,
        default=8001,
        help="first stage port: vad, stt, llm, tts follow (0: pick free ports)",
    )
    up.add_argument("--token", default=None, help="bearer token clients must send (default: $S2S_GATEWAY_TOKEN)")
    up.add_argument("--health-timeout", type=float, default=600.0, help="seconds to wait for every service to be ready")
    args = parser.parse_args(argv)
    args.token = args.token or os.environ.get("S2S_GATEWAY_TOKEN") or None
    console = Console(highlight=False, soft_wrap=True)
    if not args.token and not is_loopback(args.host):
        console.print(
            f"[bold red]error:[/] refusing to listen on {args.host} without a token: pass --token or set S2S_GATEWAY_TOKEN"
        )
        sys.exit(2)
    sys.exit(asyncio.run(run_stack(args, console)))
