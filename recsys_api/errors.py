"""Bad input is a 4xx with ``{"detail": "...", "field": "..."}``, never a 500."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1_000_000


class ApiError(HTTPException):
    """An HTTP error whose JSON body names the offending field."""

    def __init__(self, status_code: int, detail: str, field: str | None = None):
        super().__init__(status_code=status_code, detail=detail)
        self.field = field


def field_name(loc: Sequence[Any]) -> str:
    """('body', 'ratings', 3, 'rating') -> 'ratings[3].rating'; ('query', 'n') -> 'n'."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")] or list(loc[-1:])
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """First problem as one sentence; 400 for a body that is not JSON, 422 otherwise."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return JSONResponse({"detail": f"body: invalid JSON ({reason})", "field": "body"}, status_code=400)
    name = field_name(first.get("loc", ()))
    given = first.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f" (got {json.dumps(given)[:60]})"
    extra = f"; {len(errors) - 1} more problem(s)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{name}: {first.get('msg')}{shown}{extra}", "field": name}, status_code=422)


async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    body: dict[str, Any] = {"detail": exc.detail}
    if getattr(exc, "field", None):
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413) by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ApiError(413, self._detail(), "body")
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"body: larger than {self.max_bytes:,} bytes"

    async def _refuse(self, send: Send) -> None:
        await JSONResponse({"detail": self._detail(), "field": "body"}, status_code=413)(
            {"type": "http"}, _no_receive, send
        )


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
