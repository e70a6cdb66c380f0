"""`cxr-edge users`: the station's named users, managed on the station's own machine.

    cxr-edge users add NAME --role operator|reviewer|admin [--data-dir DIR]
    cxr-edge users passwd NAME | remove NAME | token NAME | role NAME --role R | list

A password is read from standard input: one line when it is not a terminal (scripts), else
typed twice without echo. `token` prints a new API token once; only its sha256 is kept.
Works on a running station's data dir: the station reads the users on every request.
Standard library only (no web stack).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from edge.commands.common import EXIT_OK, EXIT_USAGE, table
from edge.serve.audit import AuditLog
from edge.serve.database import DB_FILENAME, Database
from edge.serve.options import default_data_dir
from edge.serve.roles import ROLES
from edge.serve.users import UserError, Users, check_name, check_password


def add_subcommand(commands) -> None:
    """Adds `users` and its actions to cli.py's subparsers."""
    users = commands.add_parser("users", help="add, change and remove the serve station's users",
                                description=__doc__.split("\n")[0])
    actions = users.add_subparsers(dest="action", required=True)
    for action, help_text in (
            ("add", "add a user (the password from standard input)"),
            ("passwd", "set a new password (ends their sessions and revokes their token)"),
            ("role", "change a user's role"),
            ("remove", "remove a user (ends their sessions, revokes their token)"),
            ("token", "print a new API token for a user (replaces the old one)"),
            ("list", "list the users")):
        sub = actions.add_parser(action, help=help_text, description=help_text)
        if action != "list":
            sub.add_argument("name", metavar="NAME")
        if action in ("add", "role"):
            sub.add_argument("--role", required=True, choices=ROLES)
        sub.add_argument("--data-dir", default=None, metavar="DIR",
                         help=f"the station's --data-dir (default {default_data_dir()})")
        sub.set_defaults(command=users_command)


def users_command(args, stdin=None) -> int:
    stdin = sys.stdin if stdin is None else stdin
    data_dir = Path(args.data_dir or default_data_dir())
    try:
        _check_owner(data_dir)
        password = None
        if args.action in ("add", "passwd"):  # refused before anything is opened or made
            if args.action == "add":
                check_name(args.name)
            password = _password(stdin, args.name)
            check_password(password)
        if args.action != "add" and not (data_dir / DB_FILENAME).is_file():
            raise UserError(f"no station database in {data_dir}: no users yet "
                            "(cxr-edge users add NAME --role admin)")
        database = Database(data_dir)
        try:
            return _run(args, Users(database, AuditLog(database)), password)
        finally:
            database.close()
    except UserError as err:
        print(f"cxr-edge users: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args, users: Users, password: str | None) -> int:
    by = _operator()
    if args.action == "list":
        rows = users.list()
        if not rows:
            print("no users: the station runs without logins (kiosk) or with its access code",
                  file=sys.stderr)
            return EXIT_OK
        sys.stdout.write(table([["NAME", "ROLE", "ADDED", "TOKEN"]] + [
            [u["name"], u["role"], u["created_at"], "yes" if u["has_token"] else "no"]
            for u in rows]))
        return EXIT_OK
    if args.action == "add":
        user = users.add(args.name, args.role, password, by)
        print(f"cxr-edge users: added {user['name']} ({user['role']}); from now on everyone "
              "logs in to this station with a name and password", file=sys.stderr)
    elif args.action == "passwd":
        users.set_password(args.name, password, by)
        print(f"cxr-edge users: new password for {args.name}; their sessions and token ended",
              file=sys.stderr)
    elif args.action == "role":
        users.set_role(args.name, args.role, by)
        print(f"cxr-edge users: {args.name} is now {args.role}", file=sys.stderr)
    elif args.action == "remove":
        users.remove(args.name, by)
        left = "" if users.any() else ("; no users are left, so the station is back to its "
                                       "access code, or to no login on loopback")
        print(f"cxr-edge users: removed {args.name}{left}", file=sys.stderr)
    elif args.action == "token":
        token = users.new_token(args.name, by)
        print(token)
        print(f"cxr-edge users: a new API token for {args.name} (the old one no longer works); "
              "it is shown only now. Send it as `Authorization: Bearer TOKEN`", file=sys.stderr)
    if users.any() and users.admins() == 0:
        print("cxr-edge users: warning: no user is an admin, so nobody can delete results, "
              "apply calibrations or read the audit log (cxr-edge users role NAME --role admin)",
              file=sys.stderr)
    return EXIT_OK


def _password(stdin, name: str) -> str:
    """One line from a pipe; typed twice, unechoed, at a terminal."""
    if not stdin.isatty():
        line = stdin.readline()
        if not line:
            raise UserError("no password on standard input (one line)")
        return line.rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ; nothing was changed")
    return first


def _operator() -> str:
    """Who the audit log names for a change made here: the machine's account."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"cli:uid {os.getuid()}"


def _check_owner(data_dir: Path) -> None:
    """Files another account creates in the data dir (SQLite's -wal, -shm) would lock the
    station's account out of its own database."""
    if data_dir.exists() and data_dir.stat().st_uid != os.geteuid():
        raise UserError(f"{data_dir} belongs to another account: run this as the station's "
                        f"user (e.g. sudo -u cxr cxr-edge users ...)")

