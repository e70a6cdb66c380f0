"""Who may use the station: loopback by default, an access code for anything else (401 without
it), and a refusal to start that happens before any socket is opened. Nothing here listens on
a non-loopback address: the network case is a station configured for 0.0.0.0 but bound to
127.0.0.2, which is still this machine."""

import base64
import socket

import pytest

from edge import cli
from edge.serve.options import BindRefused, ServeOptions, check_bind, from_args, is_loopback
from tests.edge.serve_helpers import Client, make_model_dir, start, xray_png

CODE = "clinic-code-2611"


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True),
                                            ("localhost", True), ("::1", True), ("[::1]", True),
                                            ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.20", False), ("pi.local", False),
                                            ("", False)])
def test_what_counts_as_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_a_network_bind_without_a_code_is_refused_and_with_one_allowed():
    with pytest.raises(BindRefused, match="access code"):
        check_bind(ServeOptions(model="m", host="0.0.0.0"))
    assert check_bind(ServeOptions(model="m", host="127.0.0.1")) == []
    warnings = check_bind(ServeOptions(model="m", host="0.0.0.0", access_code="short"))
    assert any("fewer than" in w for w in warnings) and any("unencrypted" in w for w in warnings)


def test_the_cli_refuses_before_listening(tmp_path, capsys):
    model = make_model_dir(tmp_path / "model")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code = cli.main(["serve", "--model", str(model), "--host", "0.0.0.0", "--port", str(port),
                     "--data-dir", str(tmp_path / "data")])
    assert code == cli.EXIT_USAGE
    assert "without an access code" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything was set up
    with socket.socket() as again:  # and nothing is listening on the port
        assert again.connect_ex(("127.0.0.1", port)) != 0


def test_the_code_comes_from_the_environment_too(tmp_path):
    args = cli._parser().parse_args(["serve", "--model", "m", "--host", "0.0.0.0"])
    options = from_args(args, environ={"CXR_ACCESS_CODE": CODE})
    assert options.access_code == CODE and check_bind(options)


@pytest.fixture
def guarded(tmp_path):
    """A station configured for the network (0.0.0.0 + code), bound to 127.0.0.2 only."""
    try:
        running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", host="0.0.0.0",
                        bind_host="127.0.0.2", access_code=CODE)
    except OSError as err:
        pytest.skip(f"cannot bind 127.0.0.2 here: {err}")
    yield running
    running.stop()


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/history"), ("GET", "/about"),
                                          ("GET", "/static/app.js"), ("GET", "/api/model"),
                                          ("GET", "/api/health"), ("GET", "/api/history"),
                                          ("GET", "/api/history.csv"),
                                          ("DELETE", "/api/history/1"),
                                          ("GET", "/nowhere")])
def test_every_request_without_the_code_is_401(guarded, method, path):
    assert guarded.url.startswith("http://127.0.0.2:")
    reply = Client(guarded.url).request(method, path)
    assert reply.status == 401
    if path.startswith("/api/"):
        assert reply.json()["error"] == "unauthorized"
        assert reply.headers["www-authenticate"].startswith("Bearer")
    elif path in ("/", "/history", "/about"):
        assert b'name="code"' in reply.body  # a browser gets the login form


def test_uploads_without_the_code_are_401_even_when_too_large(guarded):
    client = Client(guarded.url)
    assert client.upload([("a.png", xray_png(1))]).status == 401
    huge = client.request("POST", "/api/classify", b"\0" * 1024,
                          {"Content-Length": str(10**10), "Content-Type": "image/png"})
    assert huge.status == 401  # who you are is checked before what you send
    assert Client(guarded.url, {"X-Access-Code": CODE}).get("/api/history").json()["total"] == 0


def test_the_code_opens_the_api_by_header_bearer_or_basic(guarded):
    basic = base64.b64encode(f"clinic:{CODE}".encode()).decode()
    for headers in ({"X-Access-Code": CODE}, {"Authorization": f"Bearer {CODE}"},
                    {"Authorization": f"Basic {basic}"}):
        client = Client(guarded.url, headers)
        assert client.get("/api/model").status == 200
        assert client.upload([("a.png", xray_png(2))]).status == 200
    for wrong in ({"X-Access-Code": CODE + "x"}, {"Authorization": "Bearer nope"},
                  {"Authorization": "Basic !!!"}, {"X-Access-Code": ""}):
        assert Client(guarded.url, wrong).get("/api/model").status == 401


def test_the_login_form_sets_a_cookie_that_opens_the_pages(guarded):
    client = Client(guarded.url)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.get("/login").status == 200
    wrong = client.request("POST", "/login", b"code=guess", form)
    assert wrong.status == 401 and b"not right" in wrong.body
    right = client.request("POST", "/login", f"code={CODE}".encode(), form)
    assert right.status == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and CODE not in cookie
    session = cookie.split(";")[0]
    logged_in = Client(guarded.url, {"Cookie": session})
    assert logged_in.get("/").status == 200
    assert logged_in.get("/api/history").status == 200
    name, value = session.split("=", 1)
    flipped = "1" if value.endswith("0") else "0"  # one hex digit of the MAC changed
    forged = Client(guarded.url, {"Cookie": f"{name}={value[:-1]}{flipped}"})
    assert forged.get("/api/history").status == 401
    assert Client(guarded.url, {"Cookie": f"{name}=99999999999.abc"}).get("/").status == 401
