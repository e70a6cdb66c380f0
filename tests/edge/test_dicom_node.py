"""The DICOM node against counterparts nobody here wrote: dcmtk's storescu/echoscu as the X-ray
unit, Orthanc as the PACS, dciodvfy as the validator; all on 127.0.0.1, started by the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("pynetdicom", reason="the dicom-net extra is not installed")
pytest.importorskip("highdicom", reason="the dicom-net extra is not installed")

from edge.dicom_net.options import Caller, Destination, DicomOptions
from edge.serve.options import ServeOptions
from edge.serve.server import serve_in_thread
from tests.edge.dicom_peers import Orthanc, dciodvfy_errors, echoscu, free_port, require, storescu
from tests.edge.dicom_samples import write_radiograph
from tests.edge.fuzz import mutate
from tests.edge.serve_helpers import Client, make_model_dir

NODE_AE = "CXR_EDGE"
UNIT_AE = "STORESCU"
SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.22",
              "1.2.840.10008.5.1.4.1.1.88.34"}  # Comprehensive, Enhanced, Comprehensive 3D SR
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(tmp_path):
    return make_model_dir(tmp_path / "model")


def start_station(tmp_path, model, send_to=None, **dicom):
    node = DicomOptions(port=0, host="127.0.0.1", ae_title=NODE_AE,
                        allow=(Caller.parse(UNIT_AE),), send_to=send_to,
                        retry_first_s=0.2, retry_max_s=0.5, **dicom)
    return serve_in_thread(ServeOptions(model=str(model), port=0, data_dir=str(tmp_path / "data"),
                                        dicom=node))


def records(running) -> dict[str, dict]:
    body = Client(running.url).get("/api/history?limit=1000").json()
    return {r["sop_instance_uid"]: r for r in body["results"] if r["source"] == "dicom"}


def test_headers_are_checked_before_inference_and_every_object_is_recorded(tmp_path, model):
    require("storescu", "echoscu")
    cases = {  # file name -> (write_radiograph options, expected reason or None: classified)
        "cr": ({}, None),
        "dx_mono1_8bit": ({"kind": "DX", "photometric": "MONOCHROME1", "bits": 8}, None),
        "sc_chest": ({"kind": "SC", "view": None}, None),
        "lateral": ({"view": "LL"}, "unsupported_view"),
        "child": ({"patient_age": "006Y"}, "unsupported_patient"),
        "child_by_birth_date": ({"patient_age": None, "birth_date": "20220301"},
                                "unsupported_patient"),
        "hand": ({"body_part": "HAND"}, "unsupported_body_part"),
        "ct": ({"kind": "CT", "view": None}, "unsupported_sop_class"),
        "sc_no_body_part": ({"kind": "SC", "view": None, "body_part": None},
                            "unsupported_sop_class"),
        "for_processing": ({"kind": "DX_PROCESSING"}, "unsupported_presentation"),
    }
    files, expected = [], {}
    for name, (options, reason) in cases.items():
        dataset = write_radiograph(tmp_path / f"{name}.dcm", **options)
        files.append(tmp_path / f"{name}.dcm")
        expected[str(dataset.SOPInstanceUID)] = (name, reason)
    running = start_station(tmp_path, model)
    try:
        port = running.station.dicom.port
        assert echoscu(port, NODE_AE, calling_ae=UNIT_AE).returncode == 0
        sent = storescu(port, files, NODE_AE, calling_ae=UNIT_AE)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        got = records(running)
        assert set(got) == set(expected)
        for uid, (name, reason) in expected.items():
            record = got[uid]
            assert record["calling_ae"] == UNIT_AE
            if reason is None:
                assert record["status"] in ("ok", "refer"), (name, record)
                assert record["predicted_class"] and record["reason"] not in (
                    "unsupported_view",), (name, record)
            else:
                assert (record["status"], record["reason"]) == ("refer", reason), (name, record)
                assert record["predicted_class"] is None and record["error"], name
        # found by its study, from the API
        one = next(iter(expected))
        study = got[one]["study_instance_uid"]
        found = Client(running.url).get(f"/api/history?study={study}").json()["results"]
        assert [r["sop_instance_uid"] for r in found] == [one]
    finally:
        running.stop()
    # identifiers are kept as keyed hashes only
    raw = (tmp_path / "data" / "history.sqlite3").read_bytes()
    assert b"PAT-0001" not in raw and b"ACC-0001" not in raw
    assert all(r["patient_id"] is None and len(r["patient_id_hash"]) == 32
               for r in got.values())


def test_a_compressed_image_is_negotiated_and_decoded(tmp_path, model):
    require("storescu")
    dataset = write_radiograph(tmp_path / "plain.dcm")
    dataset.compress(pydicom.uid.JPEGLSLossless)  # pyjpegls, which highdicom brings
    dataset.save_as(tmp_path / "jpegls.dcm", enforce_file_format=True)
    running = start_station(tmp_path, model)
    try:
        sent = storescu(running.station.dicom.port, [tmp_path / "jpegls.dcm"], NODE_AE,
                        calling_ae=UNIT_AE, args=("--propose-jls-lossless",))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        [record] = records(running).values()
        assert record["predicted_class"], record
    finally:
        running.stop()


def test_a_caller_not_on_the_allow_list_is_rejected(tmp_path, model):
    require("storescu", "echoscu")
    write_radiograph(tmp_path / "cr.dcm")
    running = start_station(tmp_path, model)
    try:
        port = running.station.dicom.port
        refused = echoscu(port, NODE_AE, calling_ae="INTRUDER")
        assert refused.returncode != 0
        assert "reject" in (refused.stdout + refused.stderr).lower()
        assert storescu(port, [tmp_path / "cr.dcm"], NODE_AE, calling_ae="INTRUDER").returncode
        assert records(running) == {}
    finally:
        running.stop()


def test_hostile_objects_get_error_records_and_the_association_goes_on(tmp_path, model):
    require("storescu")
    good = [write_radiograph(tmp_path / f"good{i}.dcm") for i in range(2)]
    base = (tmp_path / "good0.dcm").read_bytes()
    hostile = []
    rows = write_radiograph(tmp_path / "rows.dcm", extra={"Rows": 4000})  # pixel data too short
    hostile.append(tmp_path / "rows.dcm")
    rng = np.random.default_rng(7)
    while len(hostile) < 6:  # header mutations from the fuzz harness that dcmtk still sends
        data, _ = mutate(base, rng, dicom=True)
        try:
            dataset = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
            uid = str(dataset.SOPInstanceUID)
        except Exception:
            continue
        if uid == str(good[0].SOPInstanceUID):
            path = tmp_path / f"hostile{len(hostile)}.dcm"
            path.write_bytes(data)
            hostile.append(path)
    files = [tmp_path / "good0.dcm", *hostile, tmp_path / "good1.dcm"]
    running = start_station(tmp_path, model)
    try:
        sent = storescu(running.station.dicom.port, files, NODE_AE, calling_ae=UNIT_AE,
                        args=("--no-halt",))
        results = Client(running.url).get("/api/history?limit=100").json()["results"]
        last = results[0]  # newest first: the good file after the hostile ones
        assert last["sop_instance_uid"] == str(good[1].SOPInstanceUID), sent.stdout
        assert last["predicted_class"], last
        by_uid = {r["sop_instance_uid"]: r for r in results}
        assert by_uid[str(rows.SOPInstanceUID)]["status"] == "error"
        assert len(results) >= 3
        assert all(r["status"] in ("ok", "refer", "error") and r["reason"] != "inference_failed"
                   for r in results)
    finally:
        running.stop()


def test_results_reach_the_pacs_as_sr_and_secondary_capture_that_validate(tmp_path, model):
    require("storescu", "Orthanc", "dciodvfy", "cc")
    source = write_radiograph(tmp_path / "cr.dcm")
    with Orthanc(tmp_path / "pacs") as pacs:
        running = start_station(tmp_path, model,
                                send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port))
        try:
            sent = storescu(running.station.dicom.port, [tmp_path / "cr.dcm"], NODE_AE,
                            calling_ae=UNIT_AE)
            assert sent.returncode == 0, sent.stdout + sent.stderr
            stored = pacs.wait_for_instances(2, timeout=30)
            record = next(iter(records(running).values()))
        finally:
            running.stop()
        by_class = {tags["SOPClassUID"]: tags for tags in stored}
        assert len(stored) == 2 and SECONDARY_CAPTURE in by_class
        [sr_class] = set(by_class) & SR_CLASSES
        for tags in stored:
            assert tags["StudyInstanceUID"] == source.StudyInstanceUID
            assert tags["PatientID"] == source.PatientID  # the PACS files it with the patient
            path = tmp_path / f"{tags['SOPClassUID']}.dcm"
            path.write_bytes(pacs.instance_file(tags["OrthancID"]))
            assert dciodvfy_errors(path) == [], path
        report = pydicom.dcmread(tmp_path / f"{sr_class}.dcm")
        text = json.dumps(report.to_json_dict())
        assert str(source.SOPInstanceUID) in text
        assert record["model_sha256"] in text
        assert "NOT FOR DIAGNOSTIC USE" in text.upper()
        for probability in record["probabilities"].values():
            assert f"{probability:.4f}"[:5] in text or str(probability)[:5] in text


def test_the_outbox_waits_for_a_pacs_that_is_down_and_delivers_once(tmp_path, model):
    require("storescu", "Orthanc", "cc")
    write_radiograph(tmp_path / "cr.dcm")
    pacs = Orthanc(tmp_path / "pacs")  # its ports are chosen, nothing listens yet
    running = start_station(tmp_path, model,
                            send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port))
    try:
        sent = storescu(running.station.dicom.port, [tmp_path / "cr.dcm"], NODE_AE,
                        calling_ae=UNIT_AE)
        assert sent.returncode == 0  # acknowledged although the PACS is down
        _wait(lambda: running.station.dicom.outbox.summary()["last_error"])
        assert running.station.dicom.outbox.summary()["waiting"] == 2
        with pacs:
            pacs.wait_for_instances(2, timeout=30)
            _wait(lambda: running.station.dicom.outbox.summary()["waiting"] == 0)
            time.sleep(1.5)  # past several retry intervals: nothing is sent again
            assert len(pacs.instances()) == 2
    finally:
        running.stop()


def test_a_node_killed_before_sending_delivers_after_its_restart(tmp_path, model):
    require("storescu", "Orthanc", "cc")
    write_radiograph(tmp_path / "cr.dcm")
    pacs = Orthanc(tmp_path / "pacs")
    port = free_port()
    command = [sys.executable, "-m", "edge", "dicom-listen", "--model", str(model),
               "--data-dir", str(tmp_path / "data"), "--dicom-host", "127.0.0.1",
               "--port", str(port), "--ae-title", NODE_AE, "--allow", UNIT_AE,
               "--send-to", f"ORTHANC@127.0.0.1:{pacs.dicom_port}"]
    log = open(tmp_path / "node.log", "ab")
    node = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        _wait(lambda: echoscu(port, NODE_AE, calling_ae=UNIT_AE).returncode == 0, 60)
        assert storescu(port, [tmp_path / "cr.dcm"], NODE_AE, calling_ae=UNIT_AE
                        ).returncode == 0
        node.send_signal(signal.SIGKILL)  # the PACS was down: nothing was sent
        node.wait(10)
        with pacs:
            node = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
            stored = pacs.wait_for_instances(2, timeout=60)
            assert len(stored) == 2
    finally:
        node.terminate()
        node.wait(20)
        log.close()


def _wait(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")
