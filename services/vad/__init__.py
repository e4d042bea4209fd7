"""Voice activity detection service: silero (ONNX) turns an audio stream into speech start/stop events."""
