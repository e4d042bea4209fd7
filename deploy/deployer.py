"""``up``: pick a GPU, create the pod, wait for its public port and a healthy gateway, record the endpoint.

Everything after the first create call runs under a guard: any failure, Ctrl-C, SIGTERM or SIGHUP terminates every pod
this deploy made (unless --keep) and tells the user. Without an image of the user's own, the pod starts from a public
base image and the deploy uploads this checkout to the pod's installer once its port is mapped (``bootstrap.py``).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from deploy.bootstrap_plan import BOOTSTRAP_SOURCE, plan_for
from deploy.cleanup import Interrupted, PodGuard, signals_ignored, signals_interrupt
from deploy.plan import choose_offers, full_pod_env, pod_env, pod_price, pod_spec, why_nothing_fits
from deploy.provider import (
    AuthError,
    BadRequest,
    GpuOffer,
    NoCapacity,
    NoFunds,
    PodInfo,
    Provider,
    ProviderError,
)
from deploy.settings import DeploySettings
from deploy.state import DeployState, clear_state, load_state, save_state, state_path
from deploy.ui import Ui
from deploy.upload import Project, pack_project, upload_project
from deploy.waits import DeployFailed, wait_for_health, wait_for_public_port

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130
CLIENT_COMMAND = ".venv/bin/python -m client --input question.wav --output reply.wav"


def refuse_if_deployed(provider: Provider, ui: Ui) -> bool:
    """A second deploy would overwrite the record of the first pod and leak it."""
    existing = load_state(include_pending=True)
    if existing is None:
        return False
    if provider.get_pod(existing.pod_id) is not None:
        where = existing.endpoint or "still starting"
        ui.error(f"pod {existing.pod_id} is already deployed ({where}); run `make destroy-runpod` first")
        return True
    ui.say(f"Forgetting pod {existing.pod_id}: it no longer exists.")
    clear_state()
    return False


def create_with_fallback(
    provider: Provider,
    choices: list[GpuOffer],
    settings: DeploySettings,
    name: str,
    env: dict[str, str],
    guard: PodGuard,
    ui: Ui,
) -> GpuOffer:
    """Creates the pod on the cheapest GPU type that places; after an error, finds a pod it made before retrying."""
    failures = []
    for offer in choices:
        for attempt in range(1, settings.create_attempts + 1):
            ui.say(f"Creating pod {name} on {offer.name} ({offer.cloud}, ${pod_price(offer, settings):.2f}/h)…")
            guard.create_attempted = True
            try:
                guard.pod_id = provider.create_pod(pod_spec(settings, name, offer, env))
                return offer
            except (AuthError, NoFunds, BadRequest):
                raise  # no other GPU type or retry would do better
            except ProviderError as exc:
                made = guard.pods_named()  # the create may have made the pod although it answered an error
                if made:
                    guard.pod_id = made[0]
                    ui.warn(f"the create call failed ({exc}) but RunPod did create pod {made[0]}; using it")
                    return offer
                if isinstance(exc, NoCapacity):
                    ui.say(f"  RunPod has no capacity for {offer.name} now: {exc}")
                    failures.append(f"{offer.name}: no capacity")
                    break
                ui.warn(f"creating the pod on {offer.name} failed (try {attempt} of {settings.create_attempts}): {exc}")
                failures.append(f"{offer.name}: {exc}")
    raise DeployFailed("could not create a pod on any GPU type that fits: " + "; ".join(failures))


def install_name(settings: DeploySettings) -> str:
    return "your S2S_DEPLOY_INSTALL_STEPS" if settings.install_steps else settings.install


class Deployment:
    def __init__(
        self, provider: Provider, settings: DeploySettings, ui: Ui, keep: bool = False, api_key: str = ""
    ) -> None:
        self.provider, self.settings, self.ui, self.keep, self.api_key = provider, settings, ui, keep, api_key

    def up(
        self, dry_run: bool = False, extra_env: Mapping[str, str] | None = None, environ: Mapping[str, str] = os.environ
    ) -> int:
        settings, ui = self.settings, self.ui
        if not dry_run and refuse_if_deployed(self.provider, ui):
            return EXIT_FAILED
        offers = self.provider.list_gpu_offers(settings.cloud_type, settings.gpu_count, settings.min_vram_gb)
        choices = choose_offers(offers, settings)
        ui.offers_table(offers, choices, settings.gpu_count, settings.max_price_per_hr)
        if not choices:
            raise DeployFailed(why_nothing_fits(offers, settings))
        token = secrets.token_urlsafe(32)
        name = f"{settings.name_prefix}-{secrets.token_hex(4)}"
        bootstrap = None if settings.own_image else plan_for(settings)
        project = None if settings.own_image else pack_project()
        env = full_pod_env(
            settings,
            pod_env(settings, token, environ, extra_env or {}),
            self.provider.api_url,
            self.api_key,
            bootstrap,
            project.sha256 if project else "",
            BOOTSTRAP_SOURCE.read_text(),
        )
        first = choices[0]
        if project is None:
            what = f"image {settings.image}"
        else:
            what = (
                f"base image {settings.base_image} + install ({install_name(settings)}) of s2s {project.version} "
                f"(sha256 {project.sha256[:12]}, {project.files} files, {len(project.data) // 1024} KB)"
            )
        idle = (
            f"ends itself after {settings.idle_minutes:g} min without a session"
            if settings.idle_minutes
            else "no idle shutdown"
        )
        ui.say(
            f"Plan: pod {name}, {what}, {settings.gpu_count} × {first.name} on {first.cloud} cloud at "
            f"${pod_price(first, settings):.2f}/h (cap ${settings.max_price_per_hr:.2f}/h), "
            f"{settings.container_disk_gb} GB disk, gateway on {settings.gateway_port}/tcp, {idle}; "
            f"env: {', '.join(sorted(env))} (values of the token and the key not shown)."
        )
        if dry_run:
            ui.say("Dry run: nothing was created.")
            return 0
        guard = PodGuard(self.provider, name, ui, settings.terminate_timeout_s, settings.poll_interval_s)
        try:
            with signals_interrupt():
                return self._deploy(choices, name, env, token, project, guard)
        except BaseException as exc:
            return self._fail(exc, guard)

    def _deploy(
        self,
        choices: list[GpuOffer],
        name: str,
        env: dict[str, str],
        token: str,
        project: Project | None,
        guard: PodGuard,
    ) -> int:
        settings, ui = self.settings, self.ui
        started = time.monotonic()
        offer = create_with_fallback(self.provider, choices, settings, name, env, guard, ui)
        assert guard.pod_id is not None
        state = DeployState(
            pod_id=guard.pod_id,
            name=name,
            token=token,
            gpu=offer.id,
            gpu_count=settings.gpu_count,
            cost_per_hr=pod_price(offer, settings),
            created_at=datetime.now(timezone.utc),
            image=settings.image or settings.base_image,
            project_sha256=project.sha256 if project else "",
            idle_minutes=settings.idle_minutes,
        )
        save_state(state)  # before waiting: a deploy killed outright still leaves `destroy` the pod id
        ui.say(f"Pod {state.pod_id} created ({offer.name}). Ctrl-C cancels and terminates it.")

        def check_price(pod: PodInfo) -> None:
            if pod.cost_per_hr and abs(pod.cost_per_hr - state.cost_per_hr) > 1e-9:
                state.cost_per_hr = pod.cost_per_hr
                save_state(state)
            if pod.cost_per_hr > settings.max_price_per_hr + 1e-9:
                raise DeployFailed(
                    f"RunPod bills this pod ${pod.cost_per_hr:.2f}/h, over the cap ${settings.max_price_per_hr:.2f}/h"
                )

        ip, port = wait_for_public_port(self.provider, state.pod_id, settings, ui, check_price)
        container_s = time.monotonic() - started
        ui.say(f"Container up after {container_s:.0f} s: gateway port {settings.gateway_port}/tcp is {ip}:{port}.")
        if project is not None:
            upload_project(ip, port, token, project, settings, ui)
            ui.say(f"Project uploaded (sha256 {project.sha256[:12]}); the pod installs it ({install_name(settings)}).")
        installed_at = wait_for_health(ip, port, settings, ui, installing=project is not None)
        total_s = time.monotonic() - started
        install_s = (installed_at - started - container_s) if installed_at else 0.0
        state.endpoint = f"ws://{ip}:{port}/v1/realtime"
        path = save_state(state)
        guard.terminate_extras()
        phases = f"container {container_s:.0f} s, " + (f"install {install_s:.0f} s, " if installed_at else "")
        ui.say(
            f"[bold green]Ready[/] after {total_s:.0f} s ({phases}models {total_s - container_s - install_s:.0f} s).",
            markup=True,
        )
        ui.say(f"endpoint: {state.endpoint}")
        ui.say(f"Endpoint, token and pod id saved to {path} (mode 0600); the client reads it when given no --url.")
        ui.say(f"Talk to it:  {CLIENT_COMMAND}")
        idle = (
            f" (or {settings.idle_minutes:g} min without a session: the pod then ends itself)"
            if settings.idle_minutes
            else ""
        )
        ui.say(f"It costs ${state.cost_per_hr:.2f}/h until you run:  make destroy-runpod{idle}")
        return 0

    def _fail(self, exc: BaseException, guard: PodGuard) -> int:
        with signals_ignored():  # from the first line: a second Ctrl-C must not abandon the cleanup
            interrupted = isinstance(exc, (KeyboardInterrupt, Interrupted))
            expected = interrupted or isinstance(exc, (DeployFailed, ProviderError))
            if interrupted:
                reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"got {exc}"
                self.ui.error(f"deploy {reason}")
            else:
                reason = str(exc) if expected else f"unexpected {type(exc).__name__}: {exc}"
                self.ui.error(reason)
            self._clean_up(guard)
        if not expected and isinstance(exc, Exception):
            raise exc  # a bug: the pod is handled, now show the traceback
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED

    def _clean_up(self, guard: PodGuard) -> None:
        ui = self.ui
        if self.keep and guard.pod_id:
            ui.warn(f"--keep: pod {guard.pod_id} is left running and billing; remove it with `make destroy-runpod`")
        elif guard.terminate_all():
            clear_state()
        else:
            recorded = load_state(include_pending=True)
            retry = f"retry with `make destroy-runpod` (its record stays in {state_path()}) or " if recorded else ""
            ui.error(f"a pod may still be running: {retry}delete it at https://www.runpod.io/console/pods")
