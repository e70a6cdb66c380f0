"""`cxr-edge serve` over HTTP: a real uvicorn server on 127.0.0.1, every status code the API
gives (200, 204, 303, 400, 401, 403, 404, 413, 422, 503), the history and what lands on disk."""

import csv
import http.client
import io
import json
import stat
import time
from urllib.parse import urlsplit

import pytest

from tests.edge.golden import REFERRAL_MODEL
from tests.edge.serve_helpers import (
    Client,
    make_model_dir,
    start,
    xray_png,
)


@pytest.fixture
def station(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data")
    yield running
    running.stop()


def test_one_image_gets_every_field_the_page_shows(station):
    reply = Client(station.url).upload([("chest.png", xray_png(1))])
    assert reply.status == 200, reply.body
    [result] = reply.json()["results"]
    assert result["status"] in ("ok", "refer") and result["error"] is None
    assert set(result["probabilities"]) == {"COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"}
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-3
    assert result["predicted_class"] == max(result["probabilities"],
                                            key=result["probabilities"].get)
    assert result["images"]["attention_1"].startswith("data:image/jpeg;base64,")
    assert result["inference_ms"] > 0 and result["latency_ms"] >= result["inference_ms"]
    assert (result["model_version"], result["variant"]) == ("model", "float32")
    assert result["filename"] == "chest.png" and result["id"] == 1
    assert "never a diagnosis" in reply.json()["notice"]
    assert reply.headers["content-security-policy"].startswith("default-src 'self'")
    assert reply.headers["cache-control"] == "no-store"


def test_refer_carries_its_reason(tmp_path):
    model = make_model_dir(tmp_path / "model", REFERRAL_MODEL,
                           referral={"ood_threshold": 1.0, "refer_below": 0.6})
    running = start(model, tmp_path / "data")
    try:
        import numpy as np

        from tests.edge.serve_helpers import png

        bright = np.full((32, 32), 200, np.uint8)  # mean/100 = 2.0 > 1.0: out of distribution
        [result] = Client(running.url).upload([("bright.png", png(bright))]).json()["results"]
        assert (result["status"], result["reason"]) == ("refer", "out_of_distribution")
        assert result["ood_score"] == pytest.approx(2.0, abs=0.02)
        assert set(result["images"]) == {"image"}  # no attention: the image itself is shown
    finally:
        running.stop()


def test_a_bad_file_in_a_batch_fails_alone_and_everything_is_recorded(station, planted):
    folder, _ = planted
    files = [("good.png", xray_png(2)), ("text.png", (folder / "text.png").read_bytes()),
             ("truncated.jpg", (folder / "truncated.jpg").read_bytes()),
             ("zero.png", b""), ("exif.jpg", (folder / "exif_rotated.jpg").read_bytes())]
    reply = Client(station.url).upload(files)
    assert reply.status == 200
    results = reply.json()["results"]
    assert [r["filename"] for r in results] == [name for name, _ in files]
    assert [r["reason"] if r["status"] == "error" else "fine" for r in results] == [
        "fine", "not_an_image", "truncated", "empty_file", "fine"]
    history = Client(station.url).get("/api/history").json()
    assert history["total"] == 5
    assert sorted(r["id"] for r in history["results"]) == sorted(r["id"] for r in results)


@pytest.mark.parametrize("name, reason", [("text.png", "not_an_image"),
                                          ("truncated.png", "truncated"),
                                          ("huge.png", "too_large")])
def test_a_non_image_is_422_with_the_decoders_reason(station, planted, name, reason):
    folder, _ = planted
    reply = Client(station.url).upload([(name, (folder / name).read_bytes())])
    assert reply.status == 422
    body = reply.json()
    assert body["error"] == reason and body["detail"]
    assert body["results"][0]["status"] == "error"


def test_a_raw_image_body_is_one_upload(station):
    reply = Client(station.url).request("POST", "/api/classify", xray_png(3),
                                        {"Content-Type": "image/png", "X-Filename": "raw.png"})
    assert reply.status == 200 and reply.json()["results"][0]["filename"] == "raw.png"
    empty = Client(station.url).request("POST", "/api/classify", b"",
                                        {"Content-Type": "image/png"})
    assert empty.status == 400


def test_too_large_is_413_before_the_body_is_read(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data",
                    max_upload_bytes=64 * 1024, queue_size=3)
    try:
        client = Client(running.url)
        big = client.upload([("big.png", b"\0" * (80 * 1024))])
        assert big.status == 413 and big.json()["error"] == "too_large"
        assert "limit" in big.json()["detail"]
        # No Content-Length (chunked): counted while it streams.
        chunked = _chunked_post(running.url, "/api/classify", [b"x" * 16384] * 6)
        assert chunked[0] == 413
        many = client.upload([(f"{i}.png", xray_png(i, 8)) for i in range(4)])
        assert many.status == 413 and "at most 3" in many.json()["detail"]
        assert client.get("/api/history").json()["total"] == 0  # none of them was recorded
    finally:
        running.stop()


def test_a_queue_that_stays_full_answers_503_with_retry_after(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", queue_wait_s=0.3)
    queue = running.station.queue
    queue._pending = queue.capacity  # as if 64 files were waiting and none finished
    try:
        started = time.monotonic()
        reply = Client(running.url).upload([("a.png", xray_png(4))])
        waited = time.monotonic() - started
        queue._pending = 0
        assert reply.status == 503 and reply.headers["retry-after"] == "2"
        assert reply.json()["error"] == "busy" and waited >= 0.3
        assert Client(running.url).get("/api/history").json()["total"] == 0
    finally:
        queue._pending = 0
        running.stop()


def test_history_is_newest_first_filters_exports_and_deletes(station, planted):
    folder, _ = planted
    client = Client(station.url)
    for seed in range(3):
        client.upload([(f"x{seed}.png", xray_png(seed))])
    client.upload([("=HYPERLINK(1).png", (folder / "text.png").read_bytes())])
    everything = client.get("/api/history").json()
    assert [r["id"] for r in everything["results"]] == [4, 3, 2, 1]
    assert everything["classes"][:4] == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
    errors = client.get("/api/history?status=error").json()["results"]
    assert [r["id"] for r in errors] == [4]
    some_class = everything["results"][-1]["predicted_class"]
    of_class = client.get(f"/api/history?class={some_class}").json()["results"]
    assert of_class and {r["predicted_class"] for r in of_class} == {some_class}
    assert client.get("/api/history?status=maybe").status == 400

    exported = client.get("/api/history.csv")
    assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.body.decode())))
    assert [row["id"] for row in rows] == ["4", "3", "2", "1"]
    assert rows[0]["filename"] == "'=HYPERLINK(1).png"  # never a formula in a spreadsheet
    assert rows[0]["status"] == "error" and rows[0]["reason"] == "not_an_image"
    assert {f"p_{name}" for name in everything["classes"][:4]} <= set(rows[0])
    assert float(rows[1]["p_COVID"]) == pytest.approx(everything["results"][1]["probabilities"][
        "COVID"], abs=1e-5)
    only_errors = client.get("/api/history.csv?status=error").body.decode().splitlines()
    assert len(only_errors) == 2

    assert client.get("/api/history/2").json()["id"] == 2
    assert client.delete("/api/history/2").status == 204
    assert client.get("/api/history/2").status == 404
    assert client.delete("/api/history/2").status == 404
    assert [r["id"] for r in client.get("/api/history").json()["results"]] == [4, 3, 1]


def test_a_retried_upload_id_is_recorded_once(station):
    client = Client(station.url)
    first = client.upload([("a.png", xray_png(5))], upload_ids=["retry-0001"]).json()
    again = client.upload([("a.png", xray_png(5))], upload_ids=["retry-0001"]).json()
    assert first["results"][0]["id"] == again["results"][0]["id"]
    assert again["results"][0]["duplicate"] is True
    assert client.get("/api/history").json()["total"] == 1
    assert client.upload([("a.png", xray_png(5))], upload_ids=["../../x"]).status == 400


def test_request_data_never_names_a_path_and_the_data_dir_holds_nothing_executable(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", keep_images=True)
    try:
        client = Client(running.url)
        reply = client.upload([("../../../../tmp/evil.sh", xray_png(6))])
        record = reply.json()["results"][0]
        assert record["filename"] == "evil.sh"
        assert sorted(record["kept_images"]) == ["attention_1", "image"]
        image = client.get(f"/api/history/{record['id']}/image.png")
        assert image.status == 200 and image.body.startswith(b"\x89PNG")
        assert image.headers["content-type"] == "image/png"
        assert client.get(f"/api/history/{record['id']}/attention_1.png").status == 200
        for probe in ("..%2F..%2Fhistory.sqlite3", "%2e%2e", "evil"):
            assert client.get(f"/api/history/{record['id']}/{probe}.png").status == 404
        assert client.get("/static/..%2F..%2Fapp.py").status == 404
        assert client.get("/static/app.py").status == 404
        _assert_private_and_not_executable(tmp_path / "data")  # while running: -wal, -shm too
    finally:
        running.stop()
    files = _assert_private_and_not_executable(tmp_path / "data")
    assert sorted(p.relative_to(tmp_path / "data").as_posix() for p in files) == [
        "history.sqlite3", "images/1.attention_1.png", "images/1.image.png"]
    assert not list(tmp_path.glob("**/evil.sh"))


def _assert_private_and_not_executable(folder):
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        mode = path.stat().st_mode
        assert not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH), path
        assert not mode & (stat.S_IRWXG | stat.S_IRWXO), f"{path} is readable by others"
    return files


def test_without_keep_images_no_image_is_stored(station):
    client = Client(station.url)
    record = client.upload([("a.png", xray_png(7))]).json()["results"][0]
    assert record["kept_images"] == []
    assert client.get(f"/api/history/{record['id']}/image.png").status == 404
    assert not (station.station.history.data_dir / "images").exists()


def test_a_real_dicom_is_classified(station, real_dicom_path):
    reply = Client(station.url).upload([("RG1_UNCR.dcm", real_dicom_path.read_bytes())])
    assert reply.status == 200, reply.body
    result = reply.json()["results"][0]
    assert result["status"] in ("ok", "refer") and result["width"] > 1000


def test_pages_assets_and_model_provenance(station):
    client = Client(station.url)
    for path in ("/", "/history", "/about"):
        page = client.get(path)
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert b"never a diagnosis" in page.body
        assert b"http://" not in page.body and b"https://" not in page.body  # no CDN
    assert client.get("/static/app.js").status == 200
    assert client.get("/static/nothing.js").status == 404
    model = client.get("/api/model").json()
    assert model["synthetic_data"] is True and model["version"] == "model"
    assert [gate["passed"] for gate in model["metrics"]["gates"]] == [True, True]
    assert model["metrics"]["evaluator"]["macro_f1"] == 0.93
    assert model["class_names"] == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
    assert model["has_attention"] is True and model["verified_manifest"] is True
    assert "never a diagnosis" in model["notice"]
    assert str(station.station.options.model) not in json.dumps(model)  # no server paths


def test_host_and_cross_site_guards(station):
    client = Client(station.url)
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host.
    assert client.get("/api/history", headers={"Host": "evil.example"}).status == 400
    assert client.get("/api/history", headers={"Host": "localhost:1"}).status == 200
    port = urlsplit(station.url).port
    cross = client.upload([("a.png", xray_png(8))], headers={"Origin": "http://evil.example"})
    assert cross.status == 403
    assert client.upload([("a.png", xray_png(8))], headers={"Origin": "null"}).status == 403
    for fetch_site in ("cross-site", "same-site"):  # same-site: another port of this host
        reply = client.upload([("a.png", xray_png(8))], headers={"Sec-Fetch-Site": fetch_site})
        assert reply.status == 403
    assert client.delete("/api/history/1", headers={"Sec-Fetch-Site": "cross-site"}).status == 403
    same = client.upload([("a.png", xray_png(8))],
                         headers={"Origin": f"http://127.0.0.1:{port}"})
    assert same.status == 200
    # With no-referrer pages a browser sends Origin: null even for its own form; it also says
    # same-origin, and that is what counts.
    own = client.upload([("a.png", xray_png(8))],
                        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert own.status == 200


def _chunked_post(url: str, path: str, chunks: list[bytes]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", path, body=iter(chunks), encode_chunked=True,
                           headers={"Content-Type": "image/png", "Transfer-Encoding": "chunked"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
