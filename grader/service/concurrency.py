"""At most N requests in the API at once; the others wait their turn in the event loop, holding nothing.

Why: a request holds its database connection from its first query until its session commits, across
several hops between FastAPI's threads (the dependencies, the handler, the commit). With more requests in
flight than the pool has connections, threads block waiting for a connection while the requests that
hold one wait for a free thread: the API stops (seen in a deadline rush of 50 clients). With N no larger
than the pool, a connection is always free for a request that got in; with N below the threads (40),
a request holding SQLite's write lock always finds a thread to commit on (Settings.api_concurrency).
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Receive, Scope, Send

# A page's server-sent events wait most of their life and hold no connection while they do (each read
# takes a fresh session): counted here, a few watching students would shut everyone else out.
STREAMS = re.compile(r"^/submissions/[^/]+/events$")


class RequestLimit:
    def __init__(self, app: ASGIApp, most: int) -> None:
        self.app, self.most = app, most
        self._turns: asyncio.Semaphore | None = None  # made in the server's event loop, on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or STREAMS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.most)
        async with self._turns:
            await self.app(scope, receive, send)
