import asyncio

from proliferate.llm_proxy.bootstrap import main

try:  # uvloop: the edge relays bytes for hundreds of streams; the loop's overhead is its cost
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
except ImportError:  # pragma: no cover - platforms without uvloop run the standard loop
    pass

main()
