"""Smart Turn v3.2 (pipecat's end-of-turn model, BSD-2) on onnxruntime: is the utterance so far a complete turn?

The ONNX file ships inside the ``pipecat-ai`` wheel (installed with ``--no-deps``); pipecat itself is never imported,
as its dependencies are not installed. The model reads Whisper log-mel features of the last 8 s of 16 kHz audio,
zero-padded at the start, and answers the probability that the speaker has finished. The preprocessing follows
pipecat's ``LocalSmartTurnAnalyzerV3`` (left padding, waveform normalised to zero mean and unit variance, then the
log-mel of ``transformers.WhisperFeatureExtractor(chunk_length=8)``). The log-mel is the small numpy version below,
so the VAD image needs no transformers or faster-whisper: tests/test_end_of_turn.py checks it against transformers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 8 * SAMPLE_RATE  # the model's input: the last 8 s
N_FFT, HOP, N_MELS = 400, 160, 80
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


def embedded_smart_turn_path() -> Path:
    """The ONNX file inside the pipecat-ai wheel, found without importing pipecat (whose dependencies are absent)."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pipecat-ai is not installed: pip install --no-deps pipecat-ai==1.14.0")
    path = Path(spec.submodule_search_locations[0]) / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: pip install --no-deps pipecat-ai==1.14.0")
    return path


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa and transformers)."""
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_region] - 15.0))
    return freq


def _mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters, shape (N_MELS, N_FFT // 2 + 1)."""
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array([SAMPLE_RATE / 2.0]))[0]), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    down = -slopes[:, :-2] / np.diff(edges)[:-1]
    up = slopes[:, 2:] / np.diff(edges)[1:]
    filters = np.maximum(0.0, np.minimum(down, up)) * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return np.ascontiguousarray(filters.T)


_FILTERS = _mel_filters()
_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window


def window_for_model(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of ``audio``, zero-padded at the start to exactly 8 s (pipecat's padding side)."""
    audio = np.asarray(audio, dtype=np.float32)[-WINDOW_SAMPLES:]
    return np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))


def log_mel(window: np.ndarray) -> np.ndarray:
    """Whisper log-mel features (N_MELS, frames) of a normalised waveform; float32, roughly in [-1, 1]."""
    x = np.asarray(window, dtype=np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # zero mean, unit variance: transformers' do_normalize
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")  # centred frames
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    spec = np.log10(np.maximum(1e-10, _FILTERS @ power.T))[:, :-1]  # Whisper drops the last frame
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)


class SmartTurnModel:
    """One shared ONNX session; ``probability`` is thread-safe (onnxruntime sessions may run concurrently)."""

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # ≈50 ms a call on one core; the other core keeps serving
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        path = model_path or str(embedded_smart_turn_path())
        self._session: Any = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def probability(self, audio: np.ndarray) -> float:
        """Probability that the turn is complete, given the utterance so far (16 kHz float32, any length)."""
        features = log_mel(window_for_model(audio))[None]
        (logits,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(logits).reshape(-1)[0])  # the ONNX ends in a sigmoid: already a probability
