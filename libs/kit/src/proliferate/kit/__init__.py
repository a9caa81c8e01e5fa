"""The shared runtime of every Proliferate service.

settings · db (unit of work) · outbox (+ relay) · bus (streams, consumers, dead letters) ·
rpc (server, credentials, clients) · http (Litestar edge) · logs · tracing · periodic ·
migrations · runtime (the process entry point). No business rules live here.
"""
