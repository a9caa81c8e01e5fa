"""`python -m proliferate.scripted_model --port 18080 [--script dev|echo|FILE.json] [--api-key KEY]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import msgspec
from proliferate.scripted_model.builtin import BUILTINS
from proliferate.scripted_model.script import Script
from proliferate.scripted_model.server import ScriptedModel


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m proliferate.scripted_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    parser.add_argument(
        "--script", default="dev", help=f"a built-in ({', '.join(BUILTINS)}) or a JSON file of a Script"
    )
    parser.add_argument("--api-key", default=None, help="require this key, as a vendor would")
    return parser.parse_args(argv)


def _script(value: str) -> Script:
    if value in BUILTINS:
        return Script(builtin=value)
    path = Path(value)
    if not path.is_file():
        raise SystemExit(f"--script: {value!r} is neither a built-in ({', '.join(BUILTINS)}) nor a file")
    try:
        return msgspec.json.decode(path.read_bytes(), type=Script)
    except (msgspec.DecodeError, ValueError) as exc:
        raise SystemExit(f"--script {value}: {exc}") from None


async def _serve(args: argparse.Namespace) -> None:
    model = ScriptedModel(_script(args.script), host=args.host, port=args.port, api_key=args.api_key)
    await model.start()
    print(f"scripted model listening on {model.url} (OpenAI base {model.openai_base_url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await model.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
