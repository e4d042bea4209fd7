"""What a deploy would create: the GPU types that fit the settings (cheapest first) and the pod's spec and env.

Pure: decisions in, no I/O; the deployer does the calls.
"""

from __future__ import annotations

from collections.abc import Mapping

from deploy.bootstrap_plan import LAUNCHER, BootstrapPlan, bootstrap_env, idle_env
from deploy.provider import GpuOffer, PodSpec
from deploy.settings import DeploySettings, check_env_name

# The gateway binds every interface inside the pod; RunPod maps its TCP port to a random public one.
POD_GATEWAY_HOST = "0.0.0.0"
LOCAL_ONLY_SUFFIXES = ("_HOST", "_PORT")  # where a local process listens says nothing about the pod


def pod_price(offer: GpuOffer, settings: DeploySettings) -> float:
    return offer.price_per_gpu_hr * settings.gpu_count


def fits(offer: GpuOffer, settings: DeploySettings) -> bool:
    """Enough VRAM and GPUs per machine, within the price cap, allowed (stock aside)."""
    allowed = set(settings.gpu_types)
    return (
        offer.vram_gb >= settings.min_vram_gb
        and offer.max_count >= settings.gpu_count
        and pod_price(offer, settings) <= settings.max_price_per_hr + 1e-9
        and (not allowed or offer.id in allowed)
    )


def choose_offers(offers: list[GpuOffer], settings: DeploySettings) -> list[GpuOffer]:
    """The GPU types to try, in order: those that fit and are in stock (the catalog says NONE: never tried, no blind
    create), cheapest first, then most VRAM, then the better stock."""
    stock_rank = {"HIGH": 0, "MEDIUM": 1, "LOW": 2, None: 3}
    fit = [offer for offer in offers if fits(offer, settings) and offer.stock != "NONE"]
    return sorted(fit, key=lambda o: (o.price_per_gpu_hr, -o.vram_gb, stock_rank.get(o.stock, 3), o.id, o.cloud))


def why_nothing_fits(offers: list[GpuOffer], settings: DeploySettings) -> str:
    wanted = (
        f"{settings.gpu_count} × GPU with ≥ {settings.min_vram_gb} GB on {settings.cloud_type} cloud "
        f"for ≤ ${settings.max_price_per_hr:.2f}/h"
    )
    if settings.gpu_types:
        wanted += f" among {', '.join(settings.gpu_types)}"
    big_enough = [o for o in offers if o.vram_gb >= settings.min_vram_gb]
    if not big_enough:
        return f"no GPU type fits: {wanted}; RunPod offers none with that much memory"
    out_of_stock = sorted({o.name for o in offers if fits(o, settings) and o.stock == "NONE"})
    if out_of_stock:
        return f"no GPU type fits: {wanted}; those that would are out of stock now: {', '.join(out_of_stock)}"
    cheapest = min(big_enough, key=lambda o: o.price_per_gpu_hr)
    return (
        f"no GPU type fits: {wanted}; the cheapest with enough memory is {cheapest.name} at "
        f"${pod_price(cheapest, settings):.2f}/h (raise S2S_DEPLOY_MAX_PRICE_PER_HR or --max-price)"
    )


def pod_env(
    settings: DeploySettings, token: str, environ: Mapping[str, str], extra: Mapping[str, str]
) -> dict[str, str]:
    """Model settings from the local environment, then S2S_DEPLOY_POD_ENV, then --env; the gateway's own last."""
    env = {
        key: value
        for key, value in environ.items()
        if key.startswith(tuple(settings.forward_env_prefixes)) and not key.endswith(LOCAL_ONLY_SUFFIXES)
    }
    env.update(settings.pod_env)
    env.update(extra)
    env.update(
        {
            "S2S_GATEWAY_TOKEN": token,
            "S2S_GATEWAY_HOST": POD_GATEWAY_HOST,
            "S2S_GATEWAY_PORT": str(settings.gateway_port),
        }
    )
    for key in env:
        check_env_name(key)
    return env


def full_pod_env(
    settings: DeploySettings,
    base: dict[str, str],
    api_url: str,
    api_key: str,
    bootstrap: BootstrapPlan | None,
    project_sha256: str,
    bootstrap_source: str,
) -> dict[str, str]:
    """The pod's whole environment: model settings and gateway (``pod_env``), the idle shutdown, and for the
    no-own-image path the installer with the planned project's SHA-256."""
    env = {**base, **idle_env(settings, api_url, api_key)}
    if bootstrap is not None:
        env.update(bootstrap_env(bootstrap, project_sha256, bootstrap_source))
    for key in env:
        check_env_name(key)
    return env


def pod_spec(settings: DeploySettings, name: str, offer: GpuOffer, env: dict[str, str]) -> PodSpec:
    """Own image: its own command. No own image: the public base image, started with the installer."""
    return PodSpec(
        name=name,
        image=settings.image or settings.base_image,
        gpu_type_id=offer.id,
        gpu_count=settings.gpu_count,
        cloud_type=offer.cloud,
        container_disk_gb=settings.container_disk_gb,
        tcp_ports=(settings.gateway_port,),
        env=env,
        args="" if settings.own_image else LAUNCHER,
    )


def parse_env_assignments(items: list[str]) -> dict[str, str]:
    """``--env KEY=VALUE`` arguments as a dict."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--env wants KEY=VALUE, got {item!r}")
        env[check_env_name(key)] = value
    return env
