"""The guard in front of every route: Host, cross-site writes, access code, body size.

A plain ASGI middleware, so that 401 and 413 are answered before any body is read; it also adds
the security headers to every response. The access-code session is an HMAC-signed expiry time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, Response

from edge.serve.options import is_loopback
from edge.serve.station import Station

COOKIE = "cxr_session"
SESSION_SECONDS = 12 * 3600  # one clinic shift
ACCESS_HEADER = "x-access-code"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"


class Guard:
    """Every request passes here first; refusals are answered before any body is read."""

    def __init__(self, app, station: Station):
        self.app, self.station = app, station
        self.limit = station.options.max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = _with_security_headers(send)
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large()(scope, receive, send)

    def _refusal(self, scope, headers: Headers) -> Response | None:
        options = self.station.options
        host = headers.get("host", "")
        if options.local_only and not is_loopback(_hostname(host)):
            return error_response(400, "host_not_allowed", "this station answers only to this "
                                  f"machine (localhost), not to Host {host[:100]!r}")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and _cross_site(headers):
            return error_response(403, "cross_site",
                                  "a page from another site cannot send this request")
        path = scope["path"]
        if options.access_code and path != "/login" and not self._authorized(headers):
            if path.startswith("/api/"):
                return error_response(
                    401, "unauthorized", "this station needs its access code: send it in the "
                    f"{ACCESS_HEADER} header, or log in at /login",
                    headers={"WWW-Authenticate": 'Bearer realm="cxr-edge"'})
            return access_code_page(401, "")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return self._too_large()
        return None

    def _authorized(self, headers: Headers) -> bool:
        code = self.station.options.access_code
        given = headers.get(ACCESS_HEADER)
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = credential.strip()
        elif scheme.lower() == "basic":  # curl -u any:CODE; the user name is ignored
            try:
                given = base64.b64decode(credential.strip()).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                given = None
        if given is not None and same_code(given, code):
            return True
        cookie = _cookie(headers, COOKIE)
        return cookie is not None and _valid_session(self.station.cookie_key, cookie)

    def _too_large(self) -> Response:
        megabytes = self.limit / (1024 * 1024)
        return error_response(413, "too_large", "the upload is larger than this station's "
                              f"limit of {megabytes:g} MB (--max-upload-mb)")


class _BodyTooLarge(Exception):
    pass


def access_code_page(status: int, message: str) -> Response:
    note = f'<p class="bad">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cxr-edge: access code</title><style>
body{{font:17px system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;
justify-content:center;background:#f3f5f8;color:#1d2733}}
form{{background:#fff;padding:1.5rem;border-radius:10px;box-shadow:0 2px 10px #0002;
max-width:22rem;width:90%}}input,button{{font:inherit;width:100%;box-sizing:border-box;
padding:.7rem;margin:.4rem 0}}button{{background:#1f5fa8;color:#fff;border:0;border-radius:6px}}
.bad{{color:#a11}}small{{color:#556}}</style></head><body>
<form method="post" action="/login"><h1>cxr-edge triage</h1>{note}
<label for="code">Access code</label>
<input id="code" name="code" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Enter</button><small>Ask whoever set up this station for the code.</small>
</form></body></html>"""
    return HTMLResponse(body, status_code=status, headers={"Content-Security-Policy": LOGIN_CSP})


def error_response(status: int, error: str, detail: str,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _with_security_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            extra = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"same-origin",
                     b"x-frame-options": b"DENY", b"content-security-policy": CSP.encode(),
                     b"cache-control": b"no-store"}  # results are patient data: never cached
            headers += [(name, value) for name, value in extra.items() if name not in present]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _hostname(host: str) -> str:
    """The name part of a Host header: "127.0.0.1:8080" -> 127.0.0.1, "[::1]:80" -> ::1."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cross_site(headers: Headers) -> bool:
    """A write sent by a page of another origin (CSRF), as the browser reports it."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:  # every current browser: trust its own account
        return fetch_site not in ("same-origin", "none")  # "same-site" may be another port
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser (curl, scripts): the access code is their check
    return origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def same_code(given: str, code: str) -> bool:
    return hmac.compare_digest(given.encode(), code.encode())


def session_token(key: bytes, now: float | None = None) -> str:
    expires = str(int((now or time.time()) + SESSION_SECONDS))
    return expires + "." + hmac.new(key, expires.encode(), hashlib.sha256).hexdigest()


def _valid_session(key: bytes, token: str) -> bool:
    expires, _, mac = token.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    expected = hmac.new(key, expires.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode())


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
