"""The sandbox domain: rows, the boot pipeline, in-sandbox operations, termination."""
