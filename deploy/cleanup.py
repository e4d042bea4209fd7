"""Never leak a pod: terminate-and-confirm, a guard that knows which pods a deploy may have made, signal handling."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deploy.provider import AuthError, Provider, ProviderError
from deploy.ui import Ui
from deploy.waits import pause

GONE_STATUSES = ("TERMINATED",)


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived; like KeyboardInterrupt it unwinds past ordinary error handling."""


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (terminal closed) raise Interrupted, so cleanup runs as it does for Ctrl-C."""

    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, raise_interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Cleanup must finish: a second Ctrl-C would otherwise abandon a pod half-way through terminating it."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def terminate_and_confirm(provider: Provider, pod_id: str, ui: Ui, timeout_s: float, interval_s: float) -> bool:
    """Terminates the pod and polls the pod list until it is gone; False (and says why) when that cannot be confirmed."""
    deadline = time.monotonic() + timeout_s
    sent, last = False, ""
    while True:
        try:
            if not sent:
                provider.terminate_pod(pod_id)
                sent = True
        except AuthError as exc:
            ui.error(f"could not terminate pod {pod_id}: {exc}")
            return False
        except ProviderError as exc:
            last = str(exc)  # "already gone" answers land here too; the pod list decides
        try:
            if not any(pod.id == pod_id and pod.status not in GONE_STATUSES for pod in provider.list_pods()):
                return True
            last = last or "still listed"
        except ProviderError as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            ui.error(f"pod {pod_id} may still be running (not confirmed gone after {timeout_s:g} s: {last})")
            return False
        pause(deadline, interval_s)


class PodGuard:
    """Tracks the pod a deploy created, or may have created (a create that errored can still make one)."""

    def __init__(self, provider: Provider, name: str, ui: Ui, timeout_s: float, interval_s: float) -> None:
        self.provider, self.name, self.ui = provider, name, ui
        self.timeout_s, self.interval_s = timeout_s, interval_s
        self.pod_id: str | None = None
        self.create_attempted = False

    def pods_named(self) -> list[str]:
        return [
            pod.id for pod in self.provider.list_pods() if pod.name == self.name and pod.status not in GONE_STATUSES
        ]

    def terminate_all(self) -> bool:
        """Terminates every pod this deploy made; True when none is left (confirmed)."""
        ids = [self.pod_id] if self.pod_id else []
        if self.create_attempted:
            try:
                ids += [pod_id for pod_id in self.pods_named() if pod_id not in ids]
            except ProviderError as exc:
                if not ids:
                    self.ui.error(f"could not check whether a pod named {self.name} was created: {exc}")
                    return False
        if not ids:
            self.ui.say("No pod was created; nothing to clean up.")
            return True
        ok = True
        for pod_id in ids:
            self.ui.say(f"Terminating pod {pod_id} so that it stops billing…")
            if terminate_and_confirm(self.provider, pod_id, self.ui, self.timeout_s, self.interval_s):
                self.ui.say(f"Pod {pod_id} terminated; nothing is left running or billing.")
            else:
                ok = False
        return ok

    def terminate_extras(self) -> None:
        """After success: a pod from an errored create attempt that surfaced late is a duplicate; remove it."""
        try:
            extras = [pod_id for pod_id in self.pods_named() if pod_id != self.pod_id]
        except ProviderError as exc:
            self.ui.warn(f"could not check for duplicate pods named {self.name}: {exc}")
            return
        for pod_id in extras:
            self.ui.warn(f"pod {pod_id} is a duplicate from a failed create attempt; terminating it")
            terminate_and_confirm(self.provider, pod_id, self.ui, self.timeout_s, self.interval_s)
