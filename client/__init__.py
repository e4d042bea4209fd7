"""Clients of the gateway's OpenAI Realtime endpoint: a WAV-file client (and the microphone client)."""
