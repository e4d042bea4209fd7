"""Text-to-speech service: queued text pieces in, streamed PCM16 frames out (piper, espeak-ng, parler backends)."""
