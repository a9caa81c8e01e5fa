from __future__ import annotations

from proliferate.devkit.paths import repo_root
from proliferate.devkit.protos import stale_files


def test_generated_code_is_not_stale() -> None:
    """`make protos` on a clean tree produces no diff."""
    root = repo_root()
    assert stale_files(root / "protos", root / "libs" / "protos" / "src" / "proliferate" / "protos") == []


def test_generated_modules_live_under_proliferate_protos() -> None:
    from proliferate.protos.auth.v1 import auth_pb2
    from proliferate.protos.events.v1 import runtime_pb2

    assert auth_pb2.DESCRIPTOR.package == "proliferate.auth.v1"
    assert runtime_pb2.DeadLetter.DESCRIPTOR.full_name == "proliferate.events.v1.DeadLetter"
