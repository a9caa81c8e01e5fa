"""The llm_proxy service: virtual keys, model routing and spend events (`llm-proxy.md`)."""
