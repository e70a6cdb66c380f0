"""Who is asking, who may use the station, and what they changed.

    GET /api/me          {"name", "role", "mode"}: the page shows the controls of the role
    GET /api/users       names, roles, when added, whether a token is set          (admin)
    GET /api/audit       the audit log, newest first; ?limit=N&before=ID           (admin)
    GET /api/audit.csv   all of it as CSV                                          (admin)

Users are managed with `cxr-edge users` on the station itself (edge/commands/users.py).
"""

from __future__ import annotations

import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.serve.params import int_param
from edge.serve.roles import ADMIN, OPERATOR, require
from edge.serve.station import Station

DEFAULT_AUDIT_PAGE = 200


def routes(station: Station) -> list[Route]:
    def me(request: Request) -> Response:
        who = require(request, OPERATOR)
        return JSONResponse({"name": who.name, "role": who.role,
                             "mode": getattr(request.state, "mode", None)})

    def users(request: Request) -> Response:
        require(request, ADMIN)
        return JSONResponse({"users": station.users.list()})

    def audit(request: Request) -> Response:
        require(request, ADMIN)
        limit = int_param(request, "limit", DEFAULT_AUDIT_PAGE)
        before = int_param(request, "before", None)
        return JSONResponse({"entries": station.audit.list(limit, before)})

    def audit_csv(request: Request) -> Response:
        require(request, ADMIN)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Response(station.audit.to_csv(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="cxr-audit-{stamp}.csv"'})

    return [Route("/api/me", me), Route("/api/users", users), Route("/api/audit", audit),
            Route("/api/audit.csv", audit_csv)]
