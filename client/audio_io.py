"""The sound card behind a small interface: the conversation logic sees blocks of PCM16, never PortAudio.

``AudioIO`` is what the microphone client needs: start (a microphone callback, a speaker callback that is asked for
the next samples to play), the device rates, the output latency, close. ``SoundDeviceIO`` implements it with
sounddevice (PortAudio); tests may drive the client with any other implementation.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from services.common.audio import SUPPORTED_RATES

BLOCK_MS = 20
PREFERRED_RATES = (48000, 24000, 16000, 44100, 32000, 22050)  # tried after the device's own default rate
WIRE_FALLBACK_RATE = 24000  # what the gateway gets when the device's rate is not one it takes


class AudioDeviceError(RuntimeError):
    """A device that is missing, or cannot be opened as asked; the message is one line for the user."""


class AudioIO(Protocol):
    input_rate: int  # rate of the blocks given to on_mic
    output_rate: int  # rate of the samples fill_speaker returns
    output_latency_s: float  # time from handing samples over to hearing them

    def start(self, on_mic: Callable[[np.ndarray], None], fill_speaker: Callable[[int], np.ndarray]) -> None:
        """``on_mic(int16 block)`` and ``fill_speaker(frames) -> int16 block`` run on the sound card's threads."""

    def close(self) -> None: ...


def wire_rate(device_rate: int) -> int:
    """The rate to use with the gateway: the device's own when the gateway takes it (no resampling at all)."""
    return device_rate if device_rate in SUPPORTED_RATES else WIRE_FALLBACK_RATE


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there, the PortAudio library is not
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install it: apt-get install libportaudio2"
        ) from None
    except ImportError:
        raise AudioDeviceError("the microphone client needs sounddevice: pip install 's2s[client]'") from None
    return sounddevice


def describe_devices() -> str:
    """What ``--list-devices`` prints: every device, its channels and default rate, and the defaults."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list sound devices: {exc}") from None
    default_in, default_out = sd.default.device
    lines = []
    for index, dev in enumerate(devices):
        marks = ("<" if index == default_in else " ") + (">" if index == default_out else " ")
        lines.append(
            f"{marks} {index:3d} {dev['name']}  (in {dev['max_input_channels']}, out {dev['max_output_channels']}, "
            f"{dev['default_samplerate']:.0f} Hz)"
        )
    lines.append(
        "< default input, > default output; pass a number or part of a name to --input-device / --output-device"
    )
    return "\n".join(lines)


def _find(sd: Any, device: str | None, kind: str) -> dict[str, Any]:
    spec: int | str | None = int(device) if device is not None and device.isdigit() else device
    try:
        return sd.query_devices(spec, kind=kind)
    except ValueError as exc:  # no match, several matches, or no default device
        hint = "" if spec is not None else " (is a sound server running?)"
        raise AudioDeviceError(f"{exc}{hint}; see --list-devices") from None
    except sd.PortAudioError as exc:
        if spec is None:
            raise AudioDeviceError(
                f"no default {kind} device (no sound card, or no sound server running?); see --list-devices"
            ) from None
        raise AudioDeviceError(f"{kind} device {device!r}: {exc}; see --list-devices") from None


def _negotiate(sd: Any, info: dict[str, Any], kind: str) -> int:
    """The first rate the device opens with: its own default rate, then common ones."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    default = int(info["default_samplerate"])
    for rate in (default, *[r for r in PREFERRED_RATES if r != default]):
        try:
            check(device=info["index"], samplerate=rate, channels=1, dtype="int16")
            return rate
        except (sd.PortAudioError, ValueError):
            continue
    raise AudioDeviceError(
        f"{kind} device {info['name']!r} opens at none of {sorted({default, *PREFERRED_RATES})} Hz mono"
    )


@dataclass
class DeviceChoice:
    index: int
    name: str
    rate: int


def choose_devices(input_device: str | None, output_device: str | None) -> tuple[DeviceChoice, DeviceChoice]:
    """Finds both devices and a mono PCM16 rate each opens with; AudioDeviceError with one clear line if not."""
    sd = _sounddevice()
    chosen = []
    for spec, kind in ((input_device, "input"), (output_device, "output")):
        info = _find(sd, spec, kind)
        chosen.append(DeviceChoice(info["index"], info["name"], _negotiate(sd, info, kind)))
    return chosen[0], chosen[1]


class SoundDeviceIO:
    """Two PortAudio streams (the devices may differ), mono PCM16, ``BLOCK_MS`` blocks."""

    def __init__(self, mic: DeviceChoice, speaker: DeviceChoice) -> None:
        self.mic, self.speaker = mic, speaker
        self.input_rate, self.output_rate = mic.rate, speaker.rate
        self.output_latency_s = 0.0
        self.first_input = threading.Event()  # set by the first microphone callback: audio before it is lost
        self.xruns = 0
        self._streams: list[Any] = []

    def start(self, on_mic: Callable[[np.ndarray], None], fill_speaker: Callable[[int], np.ndarray]) -> None:
        sd = _sounddevice()

        def mic_callback(indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
            self.xruns += bool(status)
            self.first_input.set()
            on_mic(indata[:, 0].copy())

        def speaker_callback(outdata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
            self.xruns += bool(status)
            outdata[:, 0] = fill_speaker(frames)

        try:
            out = sd.OutputStream(
                device=self.speaker.index,
                samplerate=self.output_rate,
                channels=1,
                dtype="int16",
                blocksize=self.output_rate * BLOCK_MS // 1000,
                latency="low",
                callback=speaker_callback,
            )
            self._streams.append(out)
            mic = sd.InputStream(
                device=self.mic.index,
                samplerate=self.input_rate,
                channels=1,
                dtype="int16",
                blocksize=self.input_rate * BLOCK_MS // 1000,
                latency="low",
                callback=mic_callback,
            )
            self._streams.append(mic)
            self.output_latency_s = float(out.latency)
            out.start()
            mic.start()
        except (sd.PortAudioError, ValueError) as exc:
            self.close()
            raise AudioDeviceError(
                f"cannot open the sound devices ({self.mic.name} / {self.speaker.name}): {exc}"
            ) from None

    def close(self) -> None:
        sd = _sounddevice()
        for stream in self._streams:
            # A device that vanished must not make closing fail.
            with contextlib.suppress(sd.PortAudioError, RuntimeError):
                stream.abort()  # drop what is queued: Ctrl-C must go quiet at once
                stream.close()
        self._streams.clear()
