"""silero-vad 6 on onnxruntime (CPU): the ONNX file from the silero-vad wheel, without the wheel's torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from services.vad.backends.base import SAMPLE_RATE

CONTEXT_SAMPLES = 64  # silero 5+ prepends the previous chunk's last 64 samples to each chunk


def embedded_silero_path() -> Path:
    # The wheel's package imports torch; we only need its data file, so find it without importing.
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    return Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.onnx"


class SileroStream:
    def __init__(self, session: Any) -> None:
        self._session = session
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def probability(self, chunk: np.ndarray) -> float:
        frame = np.concatenate([self._context, chunk]).reshape(1, -1)
        prob, self._state = self._session.run(None, {"input": frame, "state": self._state, "sr": self._sr})
        self._context = chunk[-CONTEXT_SAMPLES:]
        return float(prob[0][0])


class SileroModel:
    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # 0.07 ms a chunk: threads only add contention
        options.inter_op_num_threads = 1
        path = model_path or str(embedded_silero_path())
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def new_stream(self) -> SileroStream:
        return SileroStream(self._session)
