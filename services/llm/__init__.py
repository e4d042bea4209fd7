"""LLM service: streams a chat reply token by token (llama.cpp, transformers or any OpenAI-compatible server)."""
