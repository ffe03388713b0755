"""A cap on request bodies, checked before anything reads them: a declared Content-Length over the cap
is refused at once (413), and a body sent without one is cut off when it passes the cap (413 too: the
error reaches FastAPI's handler as an HTTPException from the body's reader)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grader.service.web.errors import page_body_too_large
from grader.service.web.security import is_page


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def message(self) -> str:
        return f"the request is larger than the {self.max_bytes / 1024**2:.0f} MiB limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, page=is_page(scope["path"]))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=self.message())
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send, *, page: bool) -> None:
        if page:  # a browser's form: words, not JSON
            body, kind = page_body_too_large(self.message()), b"text/html; charset=utf-8"
        else:
            body, kind = json.dumps({"detail": self.message()}).encode(), b"application/json"
        headers: list[Any] = [(b"content-type", kind), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
