"""OpenAI adapter tests."""
