"""The sandbox service: providers (local, Modal, E2B), sandbox boot and snapshot mechanics.

Spec: `sandbox-provider.md`.
"""
