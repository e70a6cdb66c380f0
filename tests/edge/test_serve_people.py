"""People and roles on `cxr-edge serve`: named users added with `cxr-edge users`, their sessions
and tokens, the role each route needs, failed-login limits, the audit log, and the modes
without users (kiosk on loopback, the shared access code) until a user exists."""

import contextlib
import hashlib
import http.client
import io
import json
import sqlite3
import time
from types import SimpleNamespace
from unittest import mock
from urllib.parse import urlencode, urlsplit

import pytest

from edge import cli
from edge.serve.login_limit import LoginLimit
from edge.serve.options import BindRefused, ServeOptions, check_bind
from edge.serve.roles import allows
from tests.edge.serve_helpers import Client, make_model_dir, start, wait_for, xray_png

PASSWORD = "correct horse battery"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CODE = "clinic-code-2611"


def users_cli(data, *args, stdin=""):
    """Runs `cxr-edge users ...` in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch("sys.stdin", io.StringIO(stdin)), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = cli.main(["users", *args, "--data-dir", str(data)])
    return code, out.getvalue(), err.getvalue()


def add_user(data, name, role, password=PASSWORD):
    code, _, err = users_cli(data, "add", name, "--role", role, stdin=password + "\n")
    assert code == 0, err


def new_token(data, name) -> str:
    code, out, err = users_cli(data, "token", name)
    assert code == 0, err
    return out.strip()


def log_in(url, name, password=PASSWORD):
    body = urlencode({"name": name, "password": password}).encode()
    return Client(url).request("POST", "/login", body, FORM)


def session_cookie(reply) -> str:
    assert reply.status == 303, reply.body
    return reply.headers["set-cookie"].split(";")[0]


def audit_rows(data) -> list[dict]:
    with contextlib.closing(sqlite3.connect(data / "history.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM audit ORDER BY id")]


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """Named users olga (operator), rui (reviewer), ada (admin), each with a token."""
    root = tmp_path_factory.mktemp("people")
    data = root / "data"
    for name, role in (("olga", "operator"), ("rui", "reviewer"), ("ada", "admin")):
        add_user(data, name, role)
    tokens = {role: new_token(data, name)
              for name, role in (("olga", "operator"), ("rui", "reviewer"), ("ada", "admin"))}
    running = start(make_model_dir(root / "model"), data)
    admin = Client(running.url, {"Authorization": f"Bearer {tokens['admin']}"})
    result_id = admin.upload([("a.png", xray_png(1))]).json()["results"][0]["id"]
    yield SimpleNamespace(url=running.url, data=data, tokens=tokens, result_id=result_id)
    running.stop()


ROUTES = [("GET", "/api/model", "operator"), ("GET", "/api/health", "operator"),
          ("GET", "/api/history", "operator"), ("GET", "/api/history.csv", "operator"),
          ("GET", "/api/history/{id}", "operator"), ("GET", "/api/history/{id}/image.png",
                                                     "operator"),
          ("POST", "/api/classify", "operator"), ("GET", "/api/me", "operator"),
          ("PUT", "/api/history/999999/finding", "reviewer"),
          ("DELETE", "/api/history/999999", "admin"), ("GET", "/api/users", "admin"),
          ("GET", "/api/audit", "admin"), ("GET", "/api/audit.csv", "admin")]


@pytest.mark.parametrize("method, path, needed", ROUTES)
def test_each_route_needs_its_role(station, method, path, needed):
    path = path.replace("{id}", str(station.result_id))
    for role in (None, "operator", "reviewer", "admin"):
        headers = {"Authorization": f"Bearer {station.tokens[role]}"} if role else {}
        client = Client(station.url, headers)
        if method == "POST":
            reply = client.upload([("b.png", xray_png(2))])
        else:
            body = b"{}" if method == "PUT" else None
            reply = client.request(method, path, body)
        if role is None:
            assert reply.status == 401 and reply.json()["error"] == "unauthorized"
            assert "log in" in reply.json()["detail"]
        elif allows(role, needed):
            assert reply.status not in (401, 403), (role, reply.body)
        else:
            assert reply.status == 403, (role, reply.body)
            assert reply.json()["error"] == "forbidden" and needed in reply.json()["detail"]


def test_me_names_the_user_role_and_mode(station):
    me = Client(station.url, {"Authorization": f"Bearer {station.tokens['reviewer']}"})
    assert me.get("/api/me").json() == {"name": "rui", "role": "reviewer", "mode": "users"}
    admin = Client(station.url, {"Authorization": f"Bearer {station.tokens['admin']}"})
    assert [u["name"] for u in admin.get("/api/users").json()["users"]] == ["ada", "olga",
                                                                            "rui"]
    assert Client(station.url, {"Authorization": "Bearer cxr_guess"}).get("/api/me").status \
        == 401


def test_pages_ask_for_a_name_and_password_even_on_loopback(station):
    reply = Client(station.url).get("/")
    assert reply.status == 401 and b'name="password"' in reply.body and b'name="name"' in \
        reply.body
    assert "script-src" not in reply.headers["content-security-policy"]  # the login CSP
    assert Client(station.url).get("/login").status == 200


def test_login_sets_a_session_cookie_and_logout_ends_it(station):
    wrong = log_in(station.url, "olga", "not her password")
    assert wrong.status == 401 and b"do not match" in wrong.body
    reply = log_in(station.url, "Olga")  # names are case-insensitive
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    session = Client(station.url, {"Cookie": session_cookie(reply)})
    assert session.get("/").status == 200
    assert session.get("/api/me").json() == {"name": "olga", "role": "operator",
                                             "mode": "users"}
    with contextlib.closing(sqlite3.connect(station.data / "history.sqlite3")) as db:
        stored = [row[0] for row in db.execute("SELECT id_sha256 FROM sessions")]
    session_id = session_cookie(reply).split("=", 1)[1]
    assert hashlib.sha256(session_id.encode()).hexdigest() in stored
    assert session_id not in stored
    out = session.request("POST", "/logout")
    assert out.status == 303 and out.headers["location"] == "/login"
    assert 'cxr_session=""' in out.headers["set-cookie"]
    assert session.get("/api/me").status == 401


def test_sessions_end_when_idle_and_after_their_lifetime(tmp_path):
    data = tmp_path / "data"
    add_user(data, "olga", "operator")
    running = start(make_model_dir(tmp_path / "model"), data, session_idle_s=0.6,
                    session_max_s=1.5)
    try:
        idle = Client(running.url, {"Cookie": session_cookie(log_in(running.url, "olga"))})
        busy = Client(running.url, {"Cookie": session_cookie(log_in(running.url, "olga"))})
        assert idle.get("/api/me").status == 200
        for _ in range(5):  # a request every 0.2 s keeps busy's session from idling out
            assert busy.get("/api/me").status == 200
            time.sleep(0.2)
        assert idle.get("/api/me").status == 401  # 1 s without a request
        wait_for(lambda: busy.get("/api/me").status == 401, "the session's lifetime ends",
                 timeout=3)
    finally:
        running.stop()


def _login_from(source: str, url: str, name: str, password: str):
    """POST /login from a chosen loopback address; returns (status, Retry-After, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                            source_address=(source, 0))
    try:
        connection.request("POST", "/login", urlencode({"name": name, "password": password}),
                           FORM)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Retry-After"), reply.read()
    finally:
        connection.close()


def test_failed_logins_lock_the_name_and_the_address(tmp_path):
    data = tmp_path / "data"
    add_user(data, "ana", "operator")
    add_user(data, "bob", "operator")
    running = start(make_model_dir(tmp_path / "model"), data, failed_login_delay_s=0)
    try:
        for _ in range(5):
            assert _login_from("127.0.0.1", running.url, "ana", "guess-guess-guess")[0] == 401
        status, retry_after, body = _login_from("127.0.0.1", running.url, "ana", PASSWORD)
        assert status == 429 and 0 < int(retry_after) <= 15 * 60
        assert b"Too many wrong passwords" in body  # even the right password waits
        assert _login_from("127.0.0.2", running.url, "ana", PASSWORD)[0] == 429  # the name
        assert _login_from("127.0.0.1", running.url, "bob", PASSWORD)[0] == 429  # the address
        assert _login_from("127.0.0.2", running.url, "bob", PASSWORD)[0] == 303
    finally:
        running.stop()


def test_the_limit_counts_within_its_window_and_the_lock_ends():
    now = [0.0]
    limit = LoginLimit(max_failures=3, window_s=10, lock_s=60, clock=lambda: now[0])
    limit.failed("user:a")
    limit.failed("user:a")
    now[0] = 11  # the first two fell out of the window
    limit.failed("user:a")
    assert limit.retry_after("user:a") == 0
    limit.failed("user:a")
    limit.failed("user:a")
    assert limit.retry_after("user:a", "address:x") == 60
    now[0] = 71.5
    assert limit.retry_after("user:a") == 0


def test_every_user_change_and_deletion_is_audited_without_secrets(tmp_path):
    data = tmp_path / "data"
    add_user(data, "ada", "admin")
    add_user(data, "olga", "operator")
    first = new_token(data, "olga")
    token = new_token(data, "olga")
    assert users_cli(data, "role", "olga", "--role", "reviewer")[0] == 0
    assert users_cli(data, "passwd", "olga", stdin="another long password\n")[0] == 0
    assert users_cli(data, "remove", "olga")[0] == 0
    running = start(make_model_dir(tmp_path / "model"), data)
    try:
        admin = Client(running.url, {"Authorization": f"Bearer {new_token(data, 'ada')}"})
        result_id = admin.upload([("chest.png", xray_png(3))]).json()["results"][0]["id"]
        assert admin.delete(f"/api/history/{result_id}").status == 204
        assert admin.get(f"/api/history/{result_id}").status == 404
        newest = admin.get("/api/audit").json()["entries"]
        csv_text = admin.get("/api/audit.csv").body.decode()
    finally:
        running.stop()
    rows = audit_rows(data)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("user.add", "user ada"), ("user.add", "user olga"), ("user.token", "user olga"),
        ("user.token", "user olga"), ("user.role", "user olga"), ("user.passwd", "user olga"),
        ("user.remove", "user olga"), ("user.token", "user ada"),
        ("result.delete", f"result {result_id}")]
    assert all(r["who"].startswith("cli:") for r in rows[:-1]) and rows[-1]["who"] == "ada"
    role = rows[4]
    assert json.loads(role["before"])["role"] == "operator"
    assert json.loads(role["after"])["role"] == "reviewer"
    assert json.loads(rows[5]["after"])["has_token"] is False  # a new password revokes it
    assert rows[6]["after"] is None and json.loads(rows[6]["before"])["name"] == "olga"
    deleted = json.loads(rows[-1]["before"])
    assert deleted["filename"] == "chest.png" and deleted["status"] in ("ok", "refer")
    everything = json.dumps(rows)
    assert "scrypt$" not in everything and token not in everything and first not in everything
    assert hashlib.sha256(token.encode()).hexdigest() not in everything
    assert [e["id"] for e in newest] == [r["id"] for r in reversed(rows)]  # newest first
    assert csv_text.startswith("id,at,who,action,target,before,after\n")
    assert "result.delete" in csv_text
    with contextlib.closing(sqlite3.connect(data / "history.sqlite3")) as db:
        for statement in ("UPDATE audit SET who = 'nobody'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)


def test_the_cli_manages_users_and_their_tokens(tmp_path):
    data = tmp_path / "data"
    code, _, err = users_cli(data, "add", "ana", "--role", "admin", stdin="short\n")
    assert code == cli.EXIT_USAGE and "at least 10" in err
    assert users_cli(data, "list")[0] == cli.EXIT_USAGE  # no database yet: nothing made
    assert not data.exists()
    add_user(data, "Ana", "admin")
    code, _, err = users_cli(data, "add", "ana", "--role", "operator", stdin=PASSWORD + "\n")
    assert code == cli.EXIT_USAGE and "already a user 'ana'" in err
    assert users_cli(data, "add", "kiosk", "--role", "admin", stdin=PASSWORD + "\n")[0] == 2
    assert users_cli(data, "token", "nobody")[2].count("no user 'nobody'") == 1
    with contextlib.closing(sqlite3.connect(data / "history.sqlite3")) as db:
        stored = db.execute("SELECT password FROM users WHERE name = 'ana'").fetchone()[0]
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
    running = start(make_model_dir(tmp_path / "model"), data)
    try:
        old = new_token(data, "ana")
        token = new_token(data, "ana")
        assert token.startswith("cxr_") and token != old
        assert Client(running.url, {"Authorization": f"Bearer {old}"}).get("/api/me").status \
            == 401  # replaced
        client = Client(running.url, {"Authorization": f"Bearer {token}"})
        assert client.get("/api/me").json()["name"] == "ana"
        session = Client(running.url, {"Cookie": session_cookie(log_in(running.url, "ana"))})
        assert session.get("/api/me").status == 200
        assert users_cli(data, "passwd", "ana", stdin="a brand new password\n")[0] == 0
        assert client.get("/api/me").status == 401 and session.get("/api/me").status == 401
        assert log_in(running.url, "ana").status == 401  # the old password is gone
        assert log_in(running.url, "ana", "a brand new password").status == 303
        add_user(data, "olga", "operator")
        olga = Client(running.url, {"Cookie": session_cookie(log_in(running.url, "olga"))})
        code, out, _ = users_cli(data, "list")
        assert code == 0 and out.split("\n")[0].split() == ["NAME", "ROLE", "ADDED", "TOKEN"]
        assert [line.split()[:2] for line in out.strip().split("\n")[1:]] == [
            ["ana", "admin"], ["olga", "operator"]]
        assert users_cli(data, "remove", "olga")[0] == 0
        assert olga.get("/api/me").status == 401
    finally:
        running.stop()


def test_kiosk_mode_stays_open_on_loopback_until_a_user_is_added(tmp_path):
    data = tmp_path / "data"
    running = start(make_model_dir(tmp_path / "model"), data)
    try:
        client = Client(running.url)
        assert client.get("/api/me").json() == {"name": "kiosk", "role": "admin",
                                                "mode": "kiosk"}
        result_id = client.upload([("a.png", xray_png(4))]).json()["results"][0]["id"]
        assert client.delete(f"/api/history/{result_id}").status == 204
        assert audit_rows(data)[-1]["who"] == "kiosk"
        add_user(data, "ana", "admin")  # on the running station: the next request logs in
        assert client.get("/api/history").status == 401
        assert users_cli(data, "remove", "ana")[0] == 0
        assert client.get("/api/history").status == 200  # back to kiosk
    finally:
        running.stop()


def test_the_access_code_is_refused_clearly_once_a_user_exists(tmp_path):
    data = tmp_path / "data"
    running = start(make_model_dir(tmp_path / "model"), data, access_code=CODE)
    try:
        coded = Client(running.url, {"X-Access-Code": CODE})
        assert coded.get("/api/me").json() == {"name": "access-code", "role": "admin",
                                               "mode": "access-code"}
        add_user(data, "ana", "admin")
        reply = coded.get("/api/history")
        assert reply.status == 401 and reply.json()["error"] == "named_users"
        assert "no longer accepted" in reply.json()["detail"]
        assert "/login" in reply.json()["detail"] and "Bearer" in reply.json()["detail"]
        page = coded.get("/")
        assert page.status == 401 and b"named users" in page.body and b'name="password"' in \
            page.body
        assert log_in(running.url, "ana").status == 303
    finally:
        running.stop()


def test_binding_the_network_needs_a_code_or_users(tmp_path):
    data = tmp_path / "data"
    network = ServeOptions(model="m", host="0.0.0.0", data_dir=str(data))
    with pytest.raises(BindRefused, match="named users"):
        check_bind(network)
    assert not data.exists()  # checking made nothing
    add_user(data, "ana", "admin")
    assert any("unencrypted" in w for w in check_bind(network))
    both = ServeOptions(model="m", host="0.0.0.0", data_dir=str(data), access_code=CODE)
    assert any("no longer accepted" in w for w in check_bind(both))


def test_a_network_station_whose_users_are_gone_lets_nobody_in(tmp_path):
    data = tmp_path / "data"
    add_user(data, "ana", "admin")
    running = start(make_model_dir(tmp_path / "model"), data, host="0.0.0.0",
                    bind_host="127.0.0.2")
    try:
        assert users_cli(data, "remove", "ana")[0] == 0
        reply = Client(running.url).get("/api/history")
        assert reply.status == 401 and reply.json()["error"] == "no_users"
        assert "cxr-edge users add" in reply.json()["detail"]
    finally:
        running.stop()
