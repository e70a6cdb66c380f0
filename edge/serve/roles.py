"""Who may do what on the station: three roles, each allowed what the one below it is.

    operator   uploads images and views results
    reviewer   also records findings (the reference label of a result)
    admin      also applies site calibrations, deletes results, manages users, reads the audit log

The guard puts the request's Principal in `request.state.principal`; a route that changes
something calls `require(request, ROLE)`: 401 when nobody is logged in, 403 when the role is
too low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the role names are read without the web stack (edge/serve/users.py)
    from starlette.requests import Request

OPERATOR, REVIEWER, ADMIN = "operator", "reviewer", "admin"
ROLES = (OPERATOR, REVIEWER, ADMIN)  # lowest first


@dataclass(frozen=True)
class Principal:
    name: str  # a user name, or "kiosk" / "access-code" in the modes without named users
    role: str
    via: str  # "session", "token", "kiosk" or "access-code"


def allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def require(request: Request, needed: str) -> Principal:
    """The request's principal if its role is at least `needed`; else 401 or 403."""
    from starlette.exceptions import HTTPException

    who = principal(request)
    if who is None:
        raise HTTPException(401, "log in first")
    if not allows(who.role, needed):
        raise HTTPException(403, f"{who.name} is {_article(who.role)} {who.role}; this needs "
                                 f"{_article(needed)} {needed}")
    return who


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"
