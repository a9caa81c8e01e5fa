"""The product API edge (gateway.md §4.6): thin controllers per route group, each forwarding to
the owning service over gRPC with the authenticated `Principal`."""
