"""The guard in front of every route: Host, cross-site writes, who is asking, body size.

A plain ASGI middleware, so that 401 and 413 are answered before any body is read; it also adds
the security headers to every response, and puts the request's Principal in the scope's state
(`request.state.principal`) with the station's mode (`request.state.mode`).

Modes, decided per request (so `cxr-edge users add` on a running station takes effect):
    users        the users table is not empty: a session cookie or `Authorization: Bearer
                 TOKEN` on every request, even from loopback; the access code is refused
    access-code  no users, an access code: everyone who has it is Principal("access-code",
                 admin); its session cookie is an HMAC-signed expiry time
    kiosk        neither, bound to loopback: the person at the machine is Principal("kiosk",
                 admin). Bound to the network with neither (its users were all removed),
                 nobody is let in.
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
from edge.serve.roles import ADMIN, Principal
from edge.serve.station import Station

MODE_USERS, MODE_ACCESS_CODE, MODE_KIOSK = "users", "access-code", "kiosk"
COOKIE = "cxr_session"  # an access-code token or a named user's session id, by mode
ACCESS_HEADER = "x-access-code"
OPEN_PATHS = ("/login", "/logout")  # reachable without being let in: how one gets in or out
LOGIN_HELP = ("log in at /login with your name and password; API clients send "
              "Authorization: Bearer TOKEN (an admin runs `cxr-edge users token NAME`)")
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
        mode = station_mode(self.station)
        who = self._principal(mode, headers)
        state = scope.setdefault("state", {})
        state["mode"] = mode
        if who is not None:
            state["principal"] = who
        elif scope["path"] not in OPEN_PATHS:
            return self._unauthorized(mode, scope["path"], headers)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return self._too_large()
        return None

    def _principal(self, mode: str, headers: Headers) -> Principal | None:
        if mode == MODE_USERS:
            return self._user(headers)
        if mode == MODE_ACCESS_CODE:
            return Principal("access-code", ADMIN, "access-code") if self._has_code(
                headers) else None
        return Principal("kiosk", ADMIN, "kiosk") if self.station.options.local_only else None

    def _user(self, headers: Headers) -> Principal | None:
        users = self.station.users
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            user = users.by_token(credential.strip())
            return None if user is None else Principal(user["name"], user["role"], "token")
        session_id = _cookie(headers, COOKIE)
        if not session_id:
            return None
        options = self.station.options
        name = users.sessions.find(session_id, options.session_max_s, options.session_idle_s)
        user = None if name is None else users.get(name)
        return None if user is None else Principal(user["name"], user["role"], "session")

    def _has_code(self, headers: Headers) -> bool:
        """The access code in a header or Basic/Bearer credentials, or its login cookie."""
        code = self.station.options.access_code
        if code is None:
            return False
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

    def _unauthorized(self, mode: str, path: str, headers: Headers) -> Response:
        api = path.startswith("/api/")
        challenge = {"WWW-Authenticate": 'Bearer realm="cxr-edge"'}
        if mode == MODE_USERS and self._has_code(headers):
            if not api:
                return login_page(401, "This station now has named users: the access code is "
                                  "no longer accepted. Log in with your name and password.")
            return error_response(401, "named_users", "this station has named users, so the "
                                  f"shared access code is no longer accepted: {LOGIN_HELP}",
                                  headers=challenge)
        if mode == MODE_USERS:
            if not api:
                return login_page(401, "")
            return error_response(401, "unauthorized", f"log in first: {LOGIN_HELP}",
                                  headers=challenge)
        if mode == MODE_ACCESS_CODE:
            if not api:
                return access_code_page(401, "")
            return error_response(
                401, "unauthorized", "this station needs its access code: send it in the "
                f"{ACCESS_HEADER} header, or log in at /login", headers=challenge)
        return error_response(401, "no_users", "this station listens on the network but has "
                              "neither users nor an access code, so it lets nobody in: add a "
                              "user (cxr-edge users add NAME --role admin) or restart it with "
                              "an access code")

    def _too_large(self) -> Response:
        megabytes = self.limit / (1024 * 1024)
        return error_response(413, "too_large", "the upload is larger than this station's "
                              f"limit of {megabytes:g} MB (--max-upload-mb)")


class _BodyTooLarge(Exception):
    pass


def access_code_page(status: int, message: str) -> Response:
    return _form_page(status, message, "access code", """
<label for="code">Access code</label>
<input id="code" name="code" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Enter</button><small>Ask whoever set up this station for the code.</small>
""")


def login_page(status: int, message: str, name: str = "",
               headers: dict | None = None) -> Response:
    """The named users' form: name and password."""
    value = html.escape(name, quote=True)
    return _form_page(status, message, "log in", f"""
<label for="name">Name</label>
<input id="name" name="name" autocomplete="username" autocapitalize="none" spellcheck="false"
 required value="{value}"{"" if value else " autofocus"}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required
{" autofocus" if value else ""}>
<button type="submit">Log in</button><small>An admin adds people with `cxr-edge users add`.
</small>
""", headers)


def _form_page(status: int, message: str, title: str, fields: str,
               headers: dict | None = None) -> Response:
    note = f'<p class="bad">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cxr-edge: {title}</title><style>
body{{font:17px system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;
justify-content:center;background:#f3f5f8;color:#1d2733}}
form{{background:#fff;padding:1.5rem;border-radius:10px;box-shadow:0 2px 10px #0002;
max-width:22rem;width:90%}}input,button{{font:inherit;width:100%;box-sizing:border-box;
padding:.7rem;margin:.4rem 0}}button{{background:#1f5fa8;color:#fff;border:0;border-radius:6px}}
.bad{{color:#a11}}small{{color:#556}}</style></head><body>
<form method="post" action="/login"><h1>cxr-edge triage</h1>{note}{fields}</form></body></html>"""
    return HTMLResponse(body, status_code=status,
                        headers={**(headers or {}), "Content-Security-Policy": LOGIN_CSP})


def station_mode(station: Station) -> str:
    """MODE_USERS once a user exists, else MODE_ACCESS_CODE with a code, else MODE_KIOSK."""
    if station.users.any():
        return MODE_USERS
    return MODE_ACCESS_CODE if station.options.access_code else MODE_KIOSK


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


def session_token(key: bytes, lifetime_s: float, now: float | None = None) -> str:
    """The access-code cookie: its expiry time, signed with the station's key."""
    expires = str(int((now or time.time()) + lifetime_s))
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
