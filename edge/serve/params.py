"""Reading a request's parameters and JSON body for the API routes; bad ones are a 400."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request


def int_param(request: Request, name: str, default):
    """A non-negative integer query parameter, or `default` when it is absent or empty."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    if not value.isdigit():
        raise HTTPException(400, f"{name} must be a non-negative integer")
    return int(value)


async def json_object(request: Request, example: str) -> dict:
    """The body as a JSON object; `example` shows the caller what one looks like."""
    data = await request.body()
    try:
        body = json.loads(data)
    except ValueError as err:  # not UTF-8, or not JSON
        raise HTTPException(400, f"the body must be JSON like {example}: {err}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, f"the body must be a JSON object like {example}")
    return body
