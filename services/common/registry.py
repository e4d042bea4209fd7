"""Backends by name, declared the same way by every stage: a setting names one, only the chosen one gets imported.

In the spirit of Hugging Face speech-to-speech's handler choice, but declarative: each stage has one ``backends``
registry (``services/<stage>/backends/__init__.py``) of small factories that import their module inside the body, so
torch, onnxruntime or llama.cpp load only when chosen, and a backend whose libraries this image lacks is still listed.

Two steps, on purpose: ``get`` is a cheap lookup done while the app is built, so a typo stops the service at once with
one line; calling the factory it returns builds the backend ready to serve (model loaded: slow, so a worker thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class BackendSettings(Protocol):
    @property
    def backend(self) -> str: ...


S = TypeVar("S", bound=BackendSettings)  # the stage's settings, which every factory takes; .backend names one
T = TypeVar("T")  # the stage's backend interface, which every factory returns


class ConfigError(RuntimeError):
    """Settings that parse but cannot be served (an unknown backend, a public address without a token)."""


class UnknownBackendError(ConfigError):
    """A setting names a backend the stage does not have; the message lists the ones it has."""

    def __init__(self, kind: str, setting: str, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        # Worded like pydantic's errors in run_service: "<stage>: invalid settings: VAR='value': why".
        super().__init__(f"invalid settings: {setting}={name!r}: no such {kind}; choose one of {', '.join(known)}")


class BackendUnavailableError(RuntimeError):
    """The backend is known but a package it needs is missing here (e.g. parler outside its own virtualenv)."""


class Registry(Generic[S, T]):
    """name -> factory(settings) -> backend. Factories import their heavy modules themselves, when called."""

    def __init__(self, kind: str, setting: str) -> None:
        self.kind = kind  # in messages: "TTS backend"
        self.setting = setting  # the environment variable that picks one: "S2S_TTS_BACKEND"
        self._factories: dict[str, Callable[[S], T]] = {}

    def register(self, name: str) -> Callable[[Callable[[S], T]], Callable[[S], T]]:
        """Decorator: ``@backends.register("piper")`` over ``def piper(settings) -> TtsBackend``."""

        def add(factory: Callable[[S], T]) -> Callable[[S], T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> Callable[[S], T]:
        """The factory for ``name`` (imports nothing); a missing package surfaces as BackendUnavailableError."""
        factory = self._factories.get(name)
        if factory is None:
            raise UnknownBackendError(self.kind, self.setting, name, self.names)

        def build(settings: S) -> T:
            try:
                return factory(settings)
            except ModuleNotFoundError as exc:  # its module, or a package that module or its constructor imports
                raise BackendUnavailableError(
                    f"{self.kind} {name!r} is not installed here: module {exc.name!r} is missing"
                ) from exc

        return build

    def load(self, settings: S) -> T:
        """The backend ``settings.backend`` names, built (tests, benchmarks); services look up early, build later."""
        return self.get(settings.backend)(settings)
