"""Speech-to-speech services: VAD, STT, LLM, TTS and the gateway, each a WebSocket server."""
