"""The LLM endpoint: authenticate a virtual key, route, forward (bytes or litellm), price, record."""
