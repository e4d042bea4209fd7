"""Command line: ``up`` (make deploy-runpod), ``down`` (make destroy-runpod), ``status`` (make status-runpod)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pydantic import ValidationError

from deploy.plan import parse_env_assignments
from deploy.provider import Provider, ProviderError
from deploy.settings import DeploySettings
from deploy.state import StateError
from deploy.ui import Ui
from deploy.waits import DeployFailed

EXIT_USAGE = 2
KEY_HELP = "create one at https://www.runpod.io/console/user/settings (API Keys) and `export RUNPOD_API_KEY=...`"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s-deploy",
        description="Run the speech-to-speech stack on a RunPod GPU pod. Reads RUNPOD_API_KEY; settings come from "
        "S2S_DEPLOY_* environment variables, and the flags below override them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="create a pod on the cheapest GPU that fits, wait until it is ready, save the endpoint"
    )
    up.add_argument("--dry-run", action="store_true", help="show the GPU choice, price and pod plan; create nothing")
    up.add_argument("--keep", action="store_true", help="on failure leave the pod running for inspection (it bills!)")
    up.add_argument(
        "--image", help="your own all-in-one image name:tag (S2S_DEPLOY_IMAGE; default: install on a public base image)"
    )
    up.add_argument(
        "--min-vram", type=int, dest="min_vram_gb", metavar="GB", help="minimum GPU memory (S2S_DEPLOY_MIN_VRAM_GB)"
    )
    up.add_argument(
        "--max-price",
        type=float,
        dest="max_price_per_hr",
        metavar="USD",
        help="cap in $/h for the pod (S2S_DEPLOY_MAX_PRICE_PER_HR)",
    )
    up.add_argument("--gpu-count", type=int, help="GPUs per pod (S2S_DEPLOY_GPU_COUNT)")
    up.add_argument(
        "--cloud",
        dest="cloud_type",
        choices=("SECURE", "COMMUNITY", "ALL"),
        help="RunPod cloud (S2S_DEPLOY_CLOUD_TYPE)",
    )
    up.add_argument(
        "--gpu", dest="gpu_types", action="append", metavar="TYPE", help="allow only this GPU type id (repeatable)"
    )
    up.add_argument(
        "--env", dest="env", action="append", default=[], metavar="KEY=VALUE", help="extra pod environment (repeatable)"
    )
    sub.add_parser("down", help="terminate the recorded pod, confirm it is gone, and forget it")
    sub.add_parser("status", help="the recorded pod's status, uptime, cost so far, gateway health and idle time left")
    return parser


def settings_from(args: argparse.Namespace) -> DeploySettings:
    names = ("image", "min_vram_gb", "max_price_per_hr", "gpu_count", "cloud_type", "gpu_types")
    overrides: dict[str, Any] = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return DeploySettings(**overrides)


def make_provider(api_key: str, settings: DeploySettings) -> Provider:
    """REST v2 (the default) or the GraphQL SDK; both read the API's base URL from RUNPOD_API_BASE_URL."""
    if settings.api == "graphql":
        from deploy.runpod_provider import RunPodProvider  # the SDK import takes ≈2 s: only when it is needed

        return RunPodProvider(api_key)
    from deploy.rest_provider import DEFAULT_API_URL, RestProvider

    return RestProvider(api_key, os.environ.get("RUNPOD_API_BASE_URL") or DEFAULT_API_URL)


def run(argv: list[str] | None = None, ui: Ui | None = None) -> int:
    args = build_parser().parse_args(argv)
    ui = ui or Ui()
    try:
        settings = settings_from(args)
        extra_env = parse_env_assignments(getattr(args, "env", []))
    except (ValidationError, ValueError) as exc:
        ui.error(f"invalid setting: {exc}")
        return EXIT_USAGE
    api_key = os.environ.get("RUNPOD_API_KEY", "").strip()
    if not api_key:
        ui.error(f"RUNPOD_API_KEY is not set: {KEY_HELP}")
        return EXIT_USAGE
    try:
        provider = make_provider(api_key, settings)
        if args.command == "up":
            from deploy.deployer import Deployment

            deployment = Deployment(provider, settings, ui, keep=args.keep, api_key=api_key)
            return deployment.up(dry_run=args.dry_run, extra_env=extra_env)
        from deploy.lifecycle import destroy, status

        return (destroy if args.command == "down" else status)(provider, settings, ui)
    except (DeployFailed, ProviderError) as exc:
        ui.error(str(exc))
        return 1
    except StateError as exc:
        ui.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        ui.error("interrupted (no pod had been created)")
        return 130


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))
