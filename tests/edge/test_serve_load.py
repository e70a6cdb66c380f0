"""Under load and across pushes: 50 simultaneous uploads on loopback all answered and recorded
once; a new push to serving/latest is picked up without a restart; a tampered push (or a
tampered file under the running model) is refused while the old model keeps serving."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge.manifest import ManifestError
from edge.serve.models import LATEST_FILE, VERSIONS_DIR
from tests.edge.golden import REFERRAL_MODEL
from tests.edge.serve_helpers import (
    Client,
    make_model_dir,
    push,
    start,
    wait_for,
    xray_png,
)

CLIENTS = 50


def test_fifty_concurrent_uploads_are_all_answered_and_recorded_once(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data")
    try:
        images = [xray_png(seed, size=40) for seed in range(CLIENTS)]

        def upload(index: int):
            return Client(running.url).upload([(f"img{index:02d}.png", images[index])])

        with ThreadPoolExecutor(CLIENTS) as pool:
            replies = list(pool.map(upload, range(CLIENTS)))
        assert [reply.status for reply in replies] == [200] * CLIENTS
        results = [reply.json()["results"][0] for reply in replies]
        assert len({result["id"] for result in results}) == CLIENTS
        for index, result in enumerate(results):  # each answer is its own image's
            assert result["filename"] == f"img{index:02d}.png"
        history = Client(running.url).get("/api/history?limit=1000").json()
        assert history["total"] == CLIENTS
        stored = {row["id"]: row["file_sha256"] for row in history["results"]}
        assert stored == {result["id"]: result["file_sha256"] for result in results}
        assert len(set(stored.values())) == CLIENTS  # none lost, none duplicated
        assert running.station.queue.pending == 0
    finally:
        running.stop()


def test_uploads_beyond_the_queue_wait_for_room_instead_of_failing(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", queue_size=2)
    try:
        def upload(index: int):  # 12 clients, batches of 1 and 2 files, room for 2 files
            files = [(f"b{index}-{n}.png", xray_png(100 * index + n)) for n in range(index % 2 + 1)]
            return Client(running.url).upload(files)

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(upload, range(12)))
        assert [reply.status for reply in replies] == [200] * 12
        uploaded = sum(len(reply.json()["results"]) for reply in replies)
        assert uploaded == 18
        assert Client(running.url).get("/api/history").json()["total"] == 18
    finally:
        running.stop()


def test_a_new_push_is_served_without_a_restart(tmp_path):
    serving = tmp_path / "serving"
    push(serving, "v1")
    running = start(serving, tmp_path / "data")  # the pusher's destination: follows LATEST
    try:
        client = Client(running.url)
        assert client.get("/api/model").json()["version"] == "v1"
        first = client.upload([("a.png", xray_png(1))]).json()["results"][0]
        assert first["model_version"] == "v1" and "attention_1" in first["images"]
        push(serving, "v2", REFERRAL_MODEL, variant="int8",
             referral={"ood_threshold": 1.0, "refer_below": 0.5})
        wait_for(lambda: client.get("/api/model").json()["version"] == "v2", "v2 is served")
        second = client.upload([("a.png", xray_png(1))]).json()["results"][0]
        assert (second["model_version"], second["variant"]) == ("v2", "int8")
        assert "attention_1" not in second["images"]
        model = client.get("/api/model").json()
        assert [e["event"] for e in model["reload"]["events"]] == ["loaded", "loaded"]
    finally:
        running.stop()


def test_the_latest_link_is_followed_too(tmp_path):
    serving = tmp_path / "serving"
    push(serving, "v1")
    running = start(serving / "latest", tmp_path / "data")
    try:
        push(serving, "v2")
        wait_for(lambda: Client(running.url).get("/api/model").json()["version"] == "v2",
                 "v2 is served through the link")
    finally:
        running.stop()


def test_a_tampered_push_is_refused_and_the_old_model_keeps_serving(tmp_path):
    serving = tmp_path / "serving"
    push(serving, "v1")
    running = start(serving, tmp_path / "data")
    try:
        client = Client(running.url)
        bad = push(serving, "v2")
        model_file = bad / "model.tflite"
        model_file.write_bytes(model_file.read_bytes()[:-8] + b"tampered")
        wait_for(lambda: client.get("/api/model").json()["reload"]["last_error"],
                 "the tampered push is refused")
        model = client.get("/api/model").json()
        assert model["version"] == "v1"
        assert "does not match its manifest" in model["reload"]["last_error"]["error"]
        assert str(tmp_path) not in json.dumps(model)  # the error names no server folder
        reply = client.upload([("a.png", xray_png(2))])
        assert reply.status == 200 and reply.json()["results"][0]["model_version"] == "v1"
        # A good push after the bad one is picked up and clears the error.
        push(serving, "v3")
        wait_for(lambda: client.get("/api/model").json()["version"] == "v3", "v3 is served")
        assert client.get("/api/model").json()["reload"]["last_error"] is None
    finally:
        running.stop()


def test_tampering_with_the_running_models_files_cannot_reach_it(tmp_path):
    model = make_model_dir(tmp_path / "model")
    running = start(model, tmp_path / "data")
    try:
        client = Client(running.url)
        before = client.upload([("a.png", xray_png(3))]).json()["results"][0]
        (model / "model.tflite").write_bytes(b"")  # truncated in place under the server
        wait_for(lambda: client.get("/api/model").json()["reload"]["last_error"],
                 "the edit is noticed and refused")
        after = client.upload([("a.png", xray_png(3))]).json()["results"][0]
        assert after["probabilities"] == before["probabilities"]  # the verified copy still runs
    finally:
        running.stop()


def test_a_tampered_model_never_starts(tmp_path):
    model = make_model_dir(tmp_path / "model")
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["class_names"] = manifest["class_names"][::-1]
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="class order"):
        start(model, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_trusted_key_refuses_an_unsigned_model_and_serves_a_signed_one(tmp_path):
    pytest.importorskip("cryptography", reason="the signing extra is not installed")
    from edge import signing

    _, public = signing.generate_keypair(tmp_path / "keys")
    private = signing.load_private_key(tmp_path / "keys" / signing.PRIVATE_KEY_FILENAME)
    model = make_model_dir(tmp_path / "model")
    with pytest.raises(ManifestError, match="not signed"):
        start(model, tmp_path / "data", trusted_keys=(str(public),))
    signing.sign_manifest(model, private, "manifest.json")
    running = start(model, tmp_path / "data", trusted_keys=(str(public),))
    try:
        assert Client(running.url).get("/api/model").json()["signed_by"] == signing.key_id(private)
    finally:
        running.stop()


@pytest.mark.pipeline_venv
def test_the_pushers_layout_names_agree():
    pusher = pytest.importorskip("components.edge_pusher",
                                 reason="the pipeline (TFX) is not installed in this venv")
    assert (pusher.LATEST_FILE, pusher.VERSIONS_DIR) == (LATEST_FILE, VERSIONS_DIR)
