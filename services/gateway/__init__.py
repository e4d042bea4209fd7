"""The gateway: owns each conversation, speaks the OpenAI Realtime protocol to clients on ``WS /v1/realtime``."""
