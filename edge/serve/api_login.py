"""Logging in and out: the access-code form, or name and password once there are named users.

    GET  /login    the form of the station's mode (kiosk: straight to the page)
    POST /login    code, or name + password -> 303 to / with an HttpOnly SameSite=Strict cookie
    POST /logout   ends the session, clears the cookie

A wrong password waits before its answer; too many for one name or one address answer 429 with
Retry-After (edge/serve/login_limit.py) without checking the password.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from edge.serve.guard import (
    COOKIE,
    MODE_ACCESS_CODE,
    MODE_KIOSK,
    MODE_USERS,
    access_code_page,
    login_page,
    same_code,
    session_token,
    station_mode,
)
from edge.serve.login_limit import LoginLimit, address_key, user_key
from edge.serve.station import Station

MAX_FORM_FIELDS = 4


def routes(station: Station) -> list[Route]:
    limit = LoginLimit()
    options = station.options

    def form_page(status: int, message: str = "", name: str = "",
                  headers: dict | None = None) -> Response:
        if station_mode(station) == MODE_USERS:
            return login_page(status, message, name, headers)
        return access_code_page(status, message)

    async def show(request: Request) -> Response:
        if station_mode(station) == MODE_KIOSK:
            return RedirectResponse("/", 303)
        return form_page(200)

    async def log_in(request: Request) -> Response:
        async with request.form(max_files=0, max_fields=MAX_FORM_FIELDS) as form:
            fields = {key: str(form.get(key) or "") for key in ("code", "name", "password")}
        mode = station_mode(station)
        if mode == MODE_USERS:
            return await _with_password(request, fields["name"], fields["password"])
        if mode == MODE_ACCESS_CODE:
            return await _with_code(fields["code"])
        return RedirectResponse("/", 303)

    async def _with_code(given: str) -> Response:
        if not same_code(given, options.access_code):
            await asyncio.sleep(options.failed_login_delay_s)
            return access_code_page(401, "That access code is not right.")
        return _logged_in(session_token(station.cookie_key, options.session_max_s))

    async def _with_password(request: Request, name: str, password: str) -> Response:
        keys = (user_key(name), address_key(request.client.host if request.client else "?"))
        wait = limit.retry_after(*keys)
        if wait:
            minutes = max(1, round(wait / 60))
            return form_page(429, f"Too many wrong passwords for this name or from this device: "
                             f"try again in about {minutes} minute{'s' * (minutes != 1)}.",
                             name, {"Retry-After": str(wait)})
        user = await run_in_threadpool(station.users.check_password, name, password)
        if user is None:
            limit.failed(*keys)
            await asyncio.sleep(options.failed_login_delay_s)
            return form_page(401, "That name and password do not match.", name)
        limit.succeeded(keys[0])
        session_id = station.users.sessions.open(user["name"], options.session_max_s,
                                                 options.session_idle_s)
        return _logged_in(session_id)

    def _logged_in(cookie: str) -> Response:
        response = RedirectResponse("/", 303)
        response.set_cookie(COOKIE, cookie, max_age=max(1, int(options.session_max_s)),
                            httponly=True, samesite="strict", path="/")
        return response

    async def log_out(request: Request) -> Response:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            station.users.sessions.end(session_id)  # an access-code token matches no row
        kiosk = station_mode(station) == MODE_KIOSK
        response = RedirectResponse("/" if kiosk else "/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return [Route("/login", show, methods=["GET"]),
            Route("/login", log_in, methods=["POST"]),
            Route("/logout", log_out, methods=["POST"])]
