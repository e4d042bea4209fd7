"""The fake RunPod's REST v2 routes, faithful to RunPod's published v2 OpenAPI document (``/v2/openapi.json``).

``GET /v2/catalog/gpus`` (``include=AVAILABILITY`` needs ``product``; ``count``/``cloud`` only with it), ``POST /v2/pods``
(201; the body is validated against ``CreatePodRequest``: an unknown field is a 422 naming it), ``GET /v2/pods``,
``GET /v2/pods/{id}``, ``DELETE /v2/pods/{id}`` (204) and ``POST /v2/pods/{id}/action``. Errors are
``application/problem+json`` documents (``title``, ``status``, ``detail``, ``errors``) with the documented codes:
401 for a missing or wrong key, 400 for a pod that cannot be placed (capacity has no code of its own), 404, 409, 422.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jsonschema import Draft202012Validator

from tests.fake_runpod_pods import NO_CAPACITY, gpu_as_v2

if TYPE_CHECKING:
    from tests.fake_runpod import FakeRunPod

CUDA_VERSION = {"type": "string", "pattern": r"^\d+\.\d+$"}
CREATE_POD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "image": {"type": "string"},
        "args": {"type": "string"},
        "disk": {"type": "integer", "minimum": 1},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "string"}},
        "registry": {"type": ["string", "null"]},
        "cloud": {"enum": ["SECURE", "COMMUNITY"]},
        "cpu": {
            "type": "object",
            "required": ["id", "vcpuCount"],
            "additionalProperties": False,
            "properties": {"id": {"type": "string", "minLength": 1}, "vcpuCount": {"type": "integer", "minimum": 2}},
        },
        "dataCenterIds": {"type": "array", "items": {"type": "string"}},
        "globalNetworking": {"type": "boolean"},
        "gpu": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "count": {"type": "integer", "minimum": 1},
                "allowedCudaVersions": {"type": "array", "items": CUDA_VERSION},
                "minCudaVersion": CUDA_VERSION,
            },
        },
        "mounts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"persistent": {"type": "object"}, "network": {"type": "array", "maxItems": 1}},
        },
        "startJupyter": {"type": "boolean"},
        "startSsh": {"type": "boolean"},
        "templateId": {"type": "string", "minLength": 1},
    },
    "if": {"not": {"required": ["templateId"]}},
    "then": {"required": ["image"]},
}
ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action"],
    "additionalProperties": False,
    "properties": {"action": {"enum": ["start", "stop", "restart", "terminate"]}},
}


def problem(status: int, detail: str, errors: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status, content_type="application/problem+json")


def violations(schema: dict[str, Any], body: Any) -> list[str]:
    """Each validation failure as RunPod words it, e.g. ``$: additional properties 'bogus' not allowed``."""
    out = []
    for error in Draft202012Validator(schema).iter_errors(body):
        path = "$" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            out.append(f"{path}: additional properties {', '.join(repr(name) for name in extra)} not allowed")
        else:
            out.append(f"{path}: {error.message}")
    return sorted(out)


def add_v2_routes(app: web.Application, fake: FakeRunPod) -> None:
    def authed(route: str, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            sent = request.headers.get("Authorization", "")
            if not sent.startswith("Bearer "):
                fake.requests.append("401")
                return problem(401, "missing bearer token")
            if sent != f"Bearer {fake.api_key}":
                fake.requests.append("401")
                return problem(401, "invalid bearer token")
            fake.requests.append(f"{request.method} {route}")
            return await handler(request)

        return wrapped

    async def catalog_gpus(request: web.Request) -> web.Response:
        query = request.query
        include, product = query.get("include"), query.get("product")
        if include is not None and include != "AVAILABILITY":
            return problem(422, "Request validation failed.", ["include: value must be one of 'AVAILABILITY'"])
        if include and not product:
            return problem(400, "product is required with include=AVAILABILITY")
        if not include and any(name in query for name in ("product", "count", "cloud")):
            return problem(400, "product, count and cloud are valid only with include=AVAILABILITY")
        if product and any(p not in ("POD", "CLUSTER", "SERVERLESS") for p in product.split(",")):
            return problem(422, "Request validation failed.", [f"product: invalid value {product!r}"])
        cloud = query.get("cloud", "SECURE")
        if cloud not in ("SECURE", "COMMUNITY"):
            return problem(422, "Request validation failed.", ["cloud: value must be one of 'SECURE', 'COMMUNITY'"])
        try:
            count = int(query.get("count", "1"))
            assert count >= 1
        except (ValueError, AssertionError):
            return problem(422, "Request validation failed.", ["count: must be an integer >= 1"])
        gpus = [
            gpu_as_v2(gpu, cloud, count, gpu.id not in fake.faults.out_of_stock, include is not None)
            for gpu in fake.gpus.values()
        ]
        return web.json_response({"gpus": gpus})

    async def create_pod(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return problem(400, "request body is not JSON")
        fake.created.append(body)
        errors = violations(CREATE_POD_SCHEMA, body)
        if errors:
            return problem(422, "Request validation failed.", errors)
        if ("gpu" in body) == ("cpu" in body):
            return problem(400, "exactly one of gpu or cpu must be set")
        gpu = fake.gpus.get(body["gpu"]["id"])
        if gpu is None:
            return problem(400, f"unknown GPU type {body['gpu']['id']!r}")
        cloud, count = body.get("cloud", "SECURE"), body["gpu"].get("count", 1)
        price = {"SECURE": gpu.secure_price, "COMMUNITY": gpu.community_price}[cloud]
        faults = fake.faults
        if price is None or count > gpu.max_count or gpu.id in faults.no_capacity | faults.out_of_stock:
            return problem(400, NO_CAPACITY)
        pod = fake.make_pod(
            body["name"],
            body["image"],
            gpu,
            count,
            price,
            dict(body.get("env") or {}),
            ",".join(body.get("ports") or []),
            cloud=cloud,
            disk=body.get("disk", 50),
            args=body.get("args", ""),
        )
        if faults.hold_create_response:
            await fake.spawn(asyncio.Event().wait())  # the pod exists, the answer never comes (cancelled at shutdown)
        if faults.create_error_after_create:
            faults.create_error_after_create -= 1
            return problem(500, "upstream error while creating the pod")
        return web.json_response(pod.as_v2(), status=201)

    async def list_pods(_request: web.Request) -> web.Response:
        return web.json_response({"pods": [pod.as_v2() for pod in fake.pods()]})

    async def get_pod(request: web.Request) -> web.Response:
        pod_id = request.match_info["id"]
        if fake.faults.get_pod_http_500:
            fake.faults.get_pod_http_500 -= 1 if fake.faults.get_pod_http_500 > 0 else 0
            fake.v2_log.append(("GET", pod_id, "500"))
            return web.Response(status=500, text="Internal Server Error")  # a proxy's answer: not a problem document
        pod = next((p for p in fake.pods() if p.id == pod_id), None)
        if pod is None:
            fake.v2_log.append(("GET", pod_id, "404"))
            return problem(404, "pod not found")
        if pod.status == "RUNNING":
            pod.polls += 1
        fake.v2_log.append(("GET", pod_id, pod.status))
        return web.json_response(pod.as_v2(ports_visible=pod.polls > fake.faults.ports_after_polls))

    async def delete_pod(request: web.Request) -> web.Response:
        pod_id = request.match_info["id"]
        fake.v2_log.append(("DELETE", pod_id, ""))
        if not fake.terminate(pod_id):
            return problem(404, "pod not found")
        return web.Response(status=204)

    async def pod_action(request: web.Request) -> web.Response:
        pod_id = request.match_info["id"]
        try:
            body = await request.json()
        except ValueError:
            return problem(400, "request body is not JSON")
        errors = violations(ACTION_SCHEMA, body)
        if errors:
            return problem(422, "Request validation failed.", errors)
        pod = next((p for p in fake.pods() if p.id == pod_id), None)
        if pod is None:
            return problem(404, "pod not found")
        fake.v2_log.append((f"ACTION {body['action']}", pod_id, pod.status))
        if body["action"] not in pod.as_v2()["actions"]:
            return problem(409, f"action {body['action']} is not valid for a pod that is {pod.status}")
        if body["action"] == "terminate":
            fake.terminate(pod_id)
            return web.Response(status=204)
        return problem(409, f"the fake does not emulate {body['action']}")

    app.router.add_get("/v2/catalog/gpus", authed("/v2/catalog/gpus", catalog_gpus))
    app.router.add_post("/v2/pods", authed("/v2/pods", create_pod))
    app.router.add_get("/v2/pods", authed("/v2/pods", list_pods))
    app.router.add_get("/v2/pods/{id}", authed("/v2/pods/{id}", get_pod))
    app.router.add_delete("/v2/pods/{id}", authed("/v2/pods/{id}", delete_pod))
    app.router.add_post("/v2/pods/{id}/action", authed("/v2/pods/{id}/action", pod_action))
