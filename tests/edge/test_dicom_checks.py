"""The node's header checks, its options and its outbox, without a network."""

from __future__ import annotations

import time

import pydicom
import pytest

from edge.dicom_net.checks import (
    UNSUPPORTED_BODY_PART,
    UNSUPPORTED_PATIENT,
    UNSUPPORTED_PRESENTATION,
    UNSUPPORTED_SOP_CLASS,
    UNSUPPORTED_VIEW,
    HeaderChecks,
    Unsuitable,
    check_header,
    patient_age_years,
)
from edge.dicom_net.identifiers import IdentifierKeeper
from edge.dicom_net.options import Caller, Destination, DicomOptions
from edge.dicom_net.outbox import Outbox
from edge.serve.database import Database
from tests.edge.dicom_samples import write_radiograph


def reason(dataset, checks=None):
    try:
        check_header(dataset, checks or HeaderChecks())
    except Unsuitable as err:
        return err.reason
    return None


@pytest.mark.parametrize("options, expected", [
    ({}, None),
    ({"kind": "DX"}, None),
    ({"view": "AP"}, None),
    ({"view": None}, None),  # many CR units leave it empty
    ({"patient_age": None}, None),  # unknown age is read
    ({"body_part": "THORAX"}, None),
    ({"view": "LL"}, UNSUPPORTED_VIEW),
    ({"view": "RL"}, UNSUPPORTED_VIEW),
    ({"body_part": "SKULL"}, UNSUPPORTED_BODY_PART),
    ({"patient_age": "014Y"}, UNSUPPORTED_PATIENT),
    ({"patient_age": "018M"}, UNSUPPORTED_PATIENT),
    ({"patient_age": None, "birth_date": "20150101"}, UNSUPPORTED_PATIENT),
    ({"patient_age": None, "birth_date": "19800101"}, None),
    ({"kind": "DX_PROCESSING"}, UNSUPPORTED_PRESENTATION),
    ({"kind": "CT", "view": None}, UNSUPPORTED_SOP_CLASS),
    ({"kind": "SC", "view": None, "body_part": None}, UNSUPPORTED_SOP_CLASS),
    ({"kind": "SC", "view": None}, None),
])
def test_each_header_gets_its_reason(tmp_path, options, expected):
    assert reason(write_radiograph(tmp_path / "x.dcm", **options)) == expected


def test_each_check_can_be_turned_off_and_the_age_limit_moved(tmp_path):
    lateral = write_radiograph(tmp_path / "l.dcm", view="LL")
    assert reason(lateral, HeaderChecks(view=False)) is None
    child = write_radiograph(tmp_path / "c.dcm", patient_age="010Y")
    assert reason(child, HeaderChecks(min_age=5)) is None
    assert reason(child, HeaderChecks(age=False)) is None
    ct = write_radiograph(tmp_path / "ct.dcm", kind="CT", view=None, body_part="CHEST")
    assert reason(ct, HeaderChecks.off()) is None


def test_patient_age_reads_the_dicom_age_string_first():
    dataset = pydicom.Dataset()
    dataset.PatientAge = "006W"
    assert patient_age_years(dataset) == pytest.approx(42 / 365.25)
    with pytest.warns(UserWarning):  # pydicom warns too
        dataset.PatientAge = "045"  # no unit: not an age string
    dataset.PatientBirthDate, dataset.StudyDate = "20000615", "20260614"
    assert patient_age_years(dataset) == pytest.approx(26.0, abs=0.01)
    dataset.StudyDate = "19990101"  # before birth: unknown, not negative
    assert patient_age_years(dataset) is None


def test_the_allow_list_takes_ae_titles_addresses_networks_and_both():
    options = DicomOptions(allow=tuple(Caller.parse(entry) for entry in
                                       ("XRAY1", "10.0.0.0/24", "ROUTER@192.168.1.5")))
    assert options.admits("XRAY1", "172.16.0.9")
    assert options.admits("ANYONE", "10.0.0.77")
    assert options.admits("ROUTER", "192.168.1.5")
    assert not options.admits("ROUTER", "192.168.1.6")
    assert not options.admits("XRAY2", "172.16.0.9")
    with pytest.raises(ValueError, match="say who may send"):
        DicomOptions()
    assert DicomOptions(allow_any=True).admits("X", "1.2.3.4")
    with pytest.raises(ValueError, match="AE title"):
        Caller.parse("A" * 17)


def test_destinations_parse_and_refuse_nonsense():
    assert Destination.parse("PACS@10.0.0.5:104") == Destination("PACS", "10.0.0.5", 104)
    assert str(Destination.parse("ORTHANC@[::1]:4242")) == "ORTHANC@::1:4242"
    for bad in ("PACS", "PACS@host", "PACS@host:0", "@host:104", "PACS@host:99999"):
        with pytest.raises(ValueError, match="AE@HOST:PORT"):
            Destination.parse(bad)


def test_identifiers_are_keyed_hashes_with_a_key_that_survives_a_restart(tmp_path):
    dataset = write_radiograph(tmp_path / "x.dcm", patient_id="P-42", accession="A-7")
    first = IdentifierKeeper(tmp_path).fields(dataset)
    again = IdentifierKeeper(tmp_path).fields(dataset)
    assert first == again and first["patient_id"] is None and first["accession_number"] is None
    assert "P-42" not in first["patient_id_hash"] and len(first["patient_id_hash"]) == 32
    assert (tmp_path / "identifier.key").stat().st_mode & 0o777 == 0o600
    other = IdentifierKeeper(tmp_path / "other").fields(dataset)
    assert other["patient_id_hash"] != first["patient_id_hash"]  # another station's key
    kept = IdentifierKeeper(tmp_path, keep=True).fields(dataset)
    assert (kept["patient_id"], kept["accession_number"]) == ("P-42", "A-7")


def test_the_outbox_queues_once_backs_off_and_forgets_sent_bytes(tmp_path):
    database = Database(tmp_path)
    outbox = Outbox(database, retry_first_s=1.0, retry_max_s=3.0)
    dataset = write_radiograph(tmp_path / "x.dcm")
    outbox.add(7, "PACS@h:1", {"sr": dataset})
    outbox.add(7, "PACS@h:1", {"sr": dataset})  # a resend of the same result: queued once
    [item] = outbox.due("PACS@h:1")
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(item.data)).SOPInstanceUID == \
        dataset.SOPInstanceUID
    assert [outbox.failed(item.id, "down") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert outbox.due("PACS@h:1") == []  # waiting its backoff
    assert outbox.due("PACS@h:1", now=time.time() + 4) == [item]
    assert outbox.summary() == {"waiting": 1, "sent": 0, "last_error": "down"}
    outbox.sent(item.id)
    assert outbox.summary() == {"waiting": 0, "sent": 1, "last_error": None}
    assert database.one("SELECT data FROM outbox")[0] is None
