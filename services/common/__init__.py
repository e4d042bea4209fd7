"""What every service and the client share: wire messages, audio helpers, settings, metrics."""
