"""The gateway service: sessions, the hub, streaming and the product API edge (`gateway.md`)."""
