"""The station's Site API over a real server: performance on confirmed cases, a calibration
an admin applies (and who may), the screen decision on later results, and the binding of a
calibration to its model version."""

import json

import numpy as np

from edge.serve.audit import AuditLog
from edge.serve.database import Database
from edge.serve.users import Users
from tests.edge.golden import model_path
from tests.edge.serve_helpers import Client, make_model_dir, png, push, start, wait_for

CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
TARGET = {"score": "abnormal", "target": {"sensitivity": 0.8}, "precision": 0.3}


def _people(data_dir):
    database = Database(data_dir)
    users = Users(database, AuditLog(database))
    tokens = {}
    for role in ("operator", "reviewer", "admin"):
        users.add(role, role, f"{role}-password-1", by="test")
        tokens[role] = users.new_token(role, by="test")
    database.close()
    return tokens


def _images(n):
    rng = np.random.default_rng(0)
    return [(f"case-{i}.png", png((rng.random((40, 40)) * (60 + 4 * i)).astype(np.uint8)))
            for i in range(n)]


def _json(client, method, path, body, token):
    return client.request(method, path, json.dumps(body).encode(),
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {token}"})


def test_site_performance_calibration_roles_and_model_binding(tmp_path):
    destination = tmp_path / "models"
    push(destination, "v1", model_path("fp32"))
    tokens = _people(tmp_path / "data")
    station = start(destination, tmp_path / "data")
    try:
        client = Client(station.url)
        as_ = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
        reply = client.upload(_images(40), headers=as_["operator"])
        assert reply.status == 200, reply.body
        results = reply.json()["results"]
        assert all(r["screen"] is None for r in results)  # not calibrated yet
        for i, result in enumerate(results):
            finding = {"label": CLASSES[i % 4], "source": "radiologist"}
            assert _json(client, "PUT", f"/api/history/{result['id']}/finding", finding,
                         tokens["reviewer"]).status == 200

        reply = client.get("/api/site/performance", headers=as_["operator"])
        assert reply.status == 200, reply.body
        performance = reply.json()
        assert performance["confirmed"] == 40 and not performance["calibrated"]
        assert "not calibrated for this model version" in performance["message"]
        assert set(performance["per_class"]) == set(CLASSES)
        assert np.sum(performance["confusion"]["matrix"]) == 40
        table = performance["screening"]["table"]
        assert all(row["tp"] + row["fn"] == 30 and row["tn"] + row["fp"] == 10 for row in table)
        assert performance["weekly"][0]["results"] == 40

        for role, status in (("operator", 403), ("reviewer", 403)):
            assert _json(client, "POST", "/api/site/calibration", TARGET,
                         tokens[role]).status == status
        assert client.request("POST", "/api/site/calibration", json.dumps(TARGET).encode(),
                              {"Content-Type": "application/json"}).status == 401
        refused = _json(client, "POST", "/api/site/calibration",
                        {"target": {"sensitivity": 0.9}}, tokens["admin"])
        assert refused.status == 422 and "more confirmed" in refused.json()["detail"]
        preview = _json(client, "POST", "/api/site/calibration", TARGET | {"dry_run": True},
                        tokens["admin"])
        assert preview.status == 200 and not preview.json()["applied"]
        assert client.get("/api/site/calibration", headers=as_["admin"]).json()["calibrated"] \
            is False
        applied = _json(client, "POST", "/api/site/calibration", TARGET, tokens["admin"]).json()
        calibration = applied["calibration"]
        assert applied["applied"] and calibration["estimates"]["sensitivity"]["value"] >= 0.8
        for key in ("score", "threshold", "target", "n_positive", "n_negative", "model_sha256"):
            assert key in calibration
        assert (calibration["n_positive"], calibration["n_negative"]) == (30, 10)

        later = client.upload(_images(3), headers=as_["operator"]).json()["results"]
        for result in later:
            assert result["screen"] in ("positive", "negative")
            assert result["screen_threshold"] == round(calibration["threshold"], 6)
            assert result["calibration_id"] == calibration["id"]
        audit = client.get("/api/audit", headers=as_["admin"]).json()
        entries = audit if isinstance(audit, list) else audit.get("entries", audit.get("audit"))
        applies = [e for e in entries if e["action"] == "calibration.apply"]
        assert len(applies) == 1 and applies[0]["who"] == "admin"
        assert applies[0]["after"]["threshold"] == calibration["threshold"]
        assert sum(e["action"] == "finding.set" for e in entries) == 40

        push(destination, "v2", model_path("fp16"))  # another model file: not calibrated
        wait_for(lambda: client.get("/api/health", headers=as_["operator"]).json().get(
            "model_version") == "v2",
                 "the new version to load")
        status = client.get("/api/site/calibration", headers=as_["operator"]).json()
        assert not status["calibrated"] and "not calibrated" in status["message"]
        after = client.upload(_images(1), headers=as_["operator"]).json()["results"][0]
        assert after["screen"] is None and after["model_version"] == "v2"
    finally:
        station.stop()


def test_serve_puts_a_site_json_in_force_at_start(tmp_path):
    from edge import cli

    images = tmp_path / "images"
    images.mkdir()
    rows = ["file,label"]
    for i, (name, data) in enumerate(_images(40)):
        (images / name).write_bytes(data)
        rows.append(f"images/{name},{CLASSES[i % 4]}")
    (tmp_path / "findings.csv").write_text("\n".join(rows) + "\n")
    site = tmp_path / "site.json"
    assert cli.main(["calibrate", "--model", str(model_path("fp32")), "--findings",
                     str(tmp_path / "findings.csv"), str(images), "--target", "sensitivity=0.8",
                     "--precision", "0.3", "--out", str(site)]) == 0
    fitted = json.loads(site.read_text())
    model = make_model_dir(tmp_path / "model", model_path("fp32"))
    station = start(model, tmp_path / "data", site_calibration=str(site))
    try:
        client = Client(station.url)
        result = client.upload(_images(1)).json()["results"][0]
        assert result["calibration_id"] == fitted["id"] and result["screen"] is not None
        assert client.get("/api/site/calibration").json()["calibration"]["id"] == fitted["id"]
    finally:
        station.stop()
