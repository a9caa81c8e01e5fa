"""`make protos`: generate Python from `protos/` into `libs/protos/src/proliferate/protos`.

Proto packages keep their wire names (`proliferate.auth.v1`); the Python modules live
under `proliferate.protos` so they never collide with the service packages
(`proliferate.auth`). Generation is deterministic, so `--check` can tell whether the
committed code is stale.

    python -m proliferate.devkit.protos            # regenerate
    python -m proliferate.devkit.protos --check    # exit 1 and list files if stale
"""

from __future__ import annotations

import filecmp
import importlib.resources
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc
from proliferate.devkit.paths import repo_root

_IMPORT = re.compile(r"^(from|import) proliferate\.(?!protos\b)", re.MULTILINE)


def proto_files(src: Path) -> list[Path]:
    return sorted(p.relative_to(src) for p in src.rglob("*.proto"))


def generate(src: Path, out: Path) -> None:
    """Run protoc (python, grpc, mypy stubs) for every proto under `src` into `out`."""
    files = proto_files(src)
    if not files:
        raise SystemExit(f"no .proto files under {src}")
    include = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        plugin_dir = Path(sys.executable).parent
        args = [
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{include}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            *[str(f) for f in files],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        generated = raw / "proliferate"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for path in sorted(generated.rglob("*")):
            if path.is_dir():
                continue
            target = out / path.relative_to(generated)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text()
            target.write_text(_IMPORT.sub(r"\1 proliferate.protos.", text))
        for directory in [out, *sorted(p for p in out.rglob("*") if p.is_dir())]:
            (directory / "__init__.py").write_text("")
        (out / "py.typed").write_text("")


def stale_files(src: Path, committed: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "protos"
        generate(src, fresh)
        return _differences(fresh, committed)


def _differences(a: Path, b: Path) -> list[str]:
    names_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    names_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    changed = sorted(str(n) for n in names_a & names_b if not filecmp.cmp(a / n, b / n, shallow=False))
    return sorted({*changed, *(str(n) for n in names_a ^ names_b)})


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    root = repo_root()
    src = root / "protos"
    out = root / "libs" / "protos" / "src" / "proliferate" / "protos"
    if "--check" in args:
        stale = stale_files(src, out)
        if stale:
            print("generated protos are stale; run `make protos`:\n  " + "\n  ".join(stale), file=sys.stderr)
            raise SystemExit(1)
        print("generated protos are up to date")
        return
    generate(src, out)
    print(f"generated {len(proto_files(src))} proto files into {out.relative_to(root)}")


if __name__ == "__main__":
    main()
