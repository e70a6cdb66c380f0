"""Findings on `cxr-edge serve` over HTTP: a real server on 127.0.0.1 records what was found
against each result (set, replace, clear, each audited), refuses bad findings with the reason,
shows them in the history (JSON and CSV), lists the worklist referred first, and imports a
findings CSV whose rows are applied, kept pending until their image arrives, or refused."""

import csv
import hashlib
import io
import json

import numpy as np
import pytest

from tests.edge.golden import REFERRAL, REFERRAL_MODEL
from tests.edge.serve_helpers import Client, make_model_dir, multipart, png, start, xray_png

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def station(tmp_path):
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data")
    yield running
    running.stop()


def put(client, result_id, body, raw=None):
    return client.request("PUT", f"/api/history/{result_id}/finding",
                          raw if raw is not None else json.dumps(body).encode(), JSON)


def audit_rows(running):
    return [(row["who"], row["action"], row["target"], row["before"], row["after"])
            for row in reversed(running.station.audit.list())]


def test_a_finding_is_set_replaced_and_cleared_each_with_its_audit_row(station):
    client = Client(station.url)
    [first, _] = client.upload([("a.png", xray_png(1)), ("b.png", xray_png(2))]).json()["results"]

    reply = put(client, first["id"], {"label": "normal", "source": "Radiologist",
                                      "note": "clear lungs"})
    assert reply.status == 200, reply.body
    finding = reply.json()["finding"]
    assert {k: finding[k] for k in ("label", "source", "note", "who")} == {
        "label": "Normal", "source": "radiologist", "note": "clear lungs", "who": "kiosk"}
    assert reply.json()["id"] == first["id"] and reply.json()["filename"] == "a.png"
    assert client.get(f"/api/history/{first['id']}").json()["finding"] == finding

    replaced = put(client, first["id"], {"label": "COVID", "source": "lab"}).json()["finding"]
    assert (replaced["label"], replaced["source"], replaced["note"]) == ("COVID", "lab", None)
    cleared = client.delete(f"/api/history/{first['id']}/finding")
    assert cleared.status == 200 and cleared.json()["finding"] is None
    assert client.delete(f"/api/history/{first['id']}/finding").status == 200  # nothing to clear

    target = f"result {first['id']}"
    assert audit_rows(station) == [("kiosk", "finding.set", target, None, finding),
                                   ("kiosk", "finding.set", target, finding, replaced),
                                   ("kiosk", "finding.clear", target, replaced, None)]
    assert station.station.findings.confirmed_cases() == []


@pytest.mark.parametrize("body, says", [
    (b"not json", "must be JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"source": "lab"}).encode(), "label is missing"),
    (json.dumps({"label": "Dragon", "source": "lab"}).encode(), "not one of the classes"),
    (json.dumps({"label": "Normal", "source": "neighbour"}).encode(), "source must be one of"),
    (json.dumps({"label": "Normal"}).encode(), "source must be one of"),
    (json.dumps({"label": "Normal", "source": "lab", "note": "x" * 501}).encode(), "at most 500"),
    (json.dumps({"label": "Normal", "source": "lab", "note": 5}).encode(), "note must be text"),
])
def test_a_bad_finding_is_400_with_the_reason_and_changes_nothing(station, body, says):
    client = Client(station.url)
    [result] = client.upload([("a.png", xray_png(1))]).json()["results"]
    reply = put(client, result["id"], None, raw=body)
    assert reply.status == 400, reply.body
    assert says in reply.json()["detail"]
    assert client.get(f"/api/history/{result['id']}").json()["finding"] is None
    assert audit_rows(station) == []


def test_an_unknown_result_is_404_and_an_error_result_is_only_not_assessable(station, planted):
    folder, _ = planted
    client = Client(station.url)
    assert put(client, 99, {"label": "Normal", "source": "lab"}).status == 404
    assert client.delete("/api/history/99/finding").status == 404
    [bad] = client.upload([("text.png", (folder / "text.png").read_bytes())]).json()["results"]
    assert put(client, bad["id"], {"label": "Normal", "source": "lab"}).status == 400
    reply = put(client, bad["id"], {"label": "not_assessable", "source": "clinician"})
    assert reply.status == 200 and reply.json()["finding"]["label"] == "not_assessable"


def test_findings_show_in_the_history_json_and_csv(station):
    client = Client(station.url)
    results = client.upload([("a.png", xray_png(1)), ("b.png", xray_png(2))]).json()["results"]
    put(client, results[1]["id"], {"label": "Viral Pneumonia", "source": "clinician"})
    listed = {r["filename"]: r["finding"] for r in client.get("/api/history").json()["results"]}
    assert listed["a.png"] is None and listed["b.png"]["label"] == "Viral Pneumonia"
    rows = {r["filename"]: r for r in csv.DictReader(io.StringIO(
        client.get("/api/history.csv").body.decode()))}
    assert {k: rows["b.png"][k] for k in ("finding_label", "finding_source", "finding_by")} == {
        "finding_label": "Viral Pneumonia", "finding_source": "clinician", "finding_by": "kiosk"}
    assert rows["b.png"]["finding_at"].startswith(listed["b.png"]["at"][:10])
    assert (rows["a.png"]["finding_label"], rows["a.png"]["finding_at"]) == ("", "")
    assert client.delete(f"/api/history/{results[1]['id']}").status == 204
    assert station.station.findings.by_result() == {}  # a deleted result takes its finding


def test_the_worklist_is_referred_first_then_newest_without_errors_or_findings(tmp_path, planted):
    folder, _ = planted
    running = start(make_model_dir(tmp_path / "model", REFERRAL_MODEL, referral=REFERRAL),
                    tmp_path / "data")
    try:
        client = Client(running.url)
        split = np.zeros((32, 32), np.uint8)
        split[:, 16:] = 180  # mean 90: in distribution, and sure of itself: ok
        bright = np.full((32, 32), 200, np.uint8)  # mean 200: out of distribution: refer
        files = [("ok-1.png", png(split)), ("refer-1.png", png(bright)),
                 ("text.png", (folder / "text.png").read_bytes()),
                 ("ok-2.png", png(split[:, ::-1].copy())), ("refer-2.png", png(bright - 10)),
                 ("done.png", png(bright - 20))]
        results = {r["filename"]: r for r in client.upload(files).json()["results"]}
        assert [results[name]["status"] for name, _ in files] == [
            "ok", "refer", "error", "ok", "refer", "refer"]
        put(client, results["done.png"]["id"], {"label": "COVID", "source": "lab"})
        worklist = client.get("/api/worklist").json()
        assert [r["filename"] for r in worklist["results"]] == [
            "refer-2.png", "refer-1.png", "ok-2.png", "ok-1.png"]
        assert worklist["total"] == 4 and worklist["sources"] == ["radiologist", "clinician",
                                                                  "lab"]
        assert all(r["finding"] is None for r in worklist["results"])
        assert [r["filename"] for r in client.get("/api/worklist?limit=1").json()["results"]] == [
            "refer-2.png"]
        assert client.get("/api/worklist?limit=x").status == 400

        [case] = running.station.findings.confirmed_cases()
        done = results["done.png"]
        assert set(case) == {"id", "created_at", "status", "reason", "predicted_class",
                             "probability", "probabilities", "ood_score", "stability",
                             "model_sha256", "model_version", "variant", "file_sha256",
                             "finding"}
        assert (case["id"], case["status"], case["reason"]) == (done["id"], "refer",
                                                               "out_of_distribution")
        assert case["ood_score"] == pytest.approx(1.8, abs=0.02)
        assert case["file_sha256"] == hashlib.sha256(png(bright - 20)).hexdigest()
        assert case["model_sha256"] and case["probabilities"] == done["probabilities"]
        assert (case["finding"]["label"], case["finding"]["source"]) == ("COVID", "lab")
    finally:
        running.stop()


def test_a_findings_csv_applies_keeps_pending_and_refuses_rows_saying_why(station, planted):
    folder, _ = planted
    client = Client(station.url)
    twice = xray_png(3)
    results = client.upload([("a.png", xray_png(1)), ("b.png", twice), ("b-again.png", twice),
                             ("text.png", (folder / "text.png").read_bytes())],
                            upload_ids=["upload-a-0001", "upload-b-0001", "upload-b-0002",
                                        "upload-t-0001"]).json()["results"]
    by_name = {r["filename"]: r for r in results}
    later = xray_png(4)
    later_sha = hashlib.sha256(later).hexdigest()
    text = "\n".join([
        "File,Label,Source,Note",
        "upload-a-0001,normal,,by upload id",  # row 2: applied, source defaults to lab
        f"{by_name['b.png']['file_sha256'].upper()},COVID,radiologist,",  # 3: both results
        f"{later_sha},Lung_Opacity,,biopsy",  # 4: no such image yet: pending
        "",  # a blank line is no row
        f"{by_name['text.png']['file_sha256']},Normal,lab,",  # 6: only an error result
        "upload-a-0001,Dragon,lab,",  # 7: not a class
        ",Normal,lab,",  # 8: no file
        "upload-a-0001,Normal,neighbour,",  # 9: bad source
        f"{'0' * 64},Dragon,lab,",  # 10: unmatched and not a class of the current model
    ]) + "\n"
    reply = client.request("POST", "/api/findings/import", text.encode(), CSV)
    assert reply.status == 200, reply.body
    report = reply.json()
    assert (report["rows"], report["applied"], report["pending"]) == (8, 3, 1)
    assert [(r["row"], r["file"]) for r in report["unmatched"]] == [(4, later_sha)]
    assert "pending" in report["unmatched"][0]["why"]
    invalid = {r["row"]: r["why"] for r in report["invalid"]}
    assert sorted(invalid) == [6, 7, 8, 9, 10]
    assert "could not be classified" in invalid[6] and "Dragon" in invalid[7]
    assert "no file" in invalid[8] and "source" in invalid[9] and "current model" in invalid[10]
    [several] = report["several"]
    assert several["row"] == 3 and several["results"] == [by_name["b.png"]["id"],
                                                           by_name["b-again.png"]["id"]]
    listed = {r["filename"]: r["finding"] for r in client.get("/api/history").json()["results"]}
    assert (listed["a.png"]["label"], listed["a.png"]["source"], listed["a.png"]["note"]) == (
        "Normal", "lab", "by upload id")
    assert listed["b.png"]["label"] == listed["b-again.png"]["label"] == "COVID"
    assert listed["text.png"] is None
    [waiting] = client.get("/api/findings/pending").json()["pending"]
    assert (waiting["file"], waiting["label"], waiting["note"]) == (later_sha, "Lung_Opacity",
                                                                    "biopsy")

    # the worker applies the pending row when its image arrives, audited as the importer
    [arrived] = client.upload([("later.png", later)]).json()["results"]
    assert arrived["finding"]["label"] == "Lung_Opacity"
    assert client.get(f"/api/history/{arrived['id']}").json()["finding"]["who"] == "kiosk"
    assert client.get("/api/findings/pending").json()["pending"] == []
    actions = audit_rows(station)
    assert [target for _, action, target, _, _ in actions if action == "finding.set"] == [
        f"result {by_name[name]['id']}" for name in ("a.png", "b.png", "b-again.png")] + [
        f"result {arrived['id']}"]


def test_a_findings_csv_as_a_form_file_and_the_refusals_of_a_whole_csv(station):
    client = Client(station.url)
    [result] = client.upload([("a.png", xray_png(1))]).json()["results"]
    body, content_type = multipart([("lab.csv", f"file,label\n{result['file_sha256']},Normal\n"
                                     .encode())])
    reply = client.request("POST", "/api/findings/import", body, {"Content-Type": content_type})
    assert reply.status == 200 and reply.json()["applied"] == 1, reply.body
    for text, says in [(b"sha,class\nx,Normal\n", "needs the columns file and label"),
                       (b"", "no CSV"), (b"\xff\xfe,label\n", "UTF-8")]:
        refused = client.request("POST", "/api/findings/import", text, CSV)
        assert refused.status == 400 and says in refused.json()["detail"], refused.body


def test_a_pending_row_can_be_discarded(station):
    client = Client(station.url)
    client.request("POST", "/api/findings/import", f"file,label\n{'a' * 64},Normal\n".encode(),
                   CSV)
    [waiting] = client.get("/api/findings/pending").json()["pending"]
    assert client.delete(f"/api/findings/pending/{waiting['id']}").status == 204
    assert client.delete(f"/api/findings/pending/{waiting['id']}").status == 404
    [result] = client.upload([("a.png", xray_png(1))]).json()["results"]
    assert result["finding"] is None
