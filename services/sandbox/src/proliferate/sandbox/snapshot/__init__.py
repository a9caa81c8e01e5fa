"""The snapshot domain: artifacts (capture, restore checks, base builds, deletion, GC)."""
