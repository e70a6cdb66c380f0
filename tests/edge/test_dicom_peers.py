"""The DICOM test helpers against the real tools: Orthanc, dcmtk, dciodvfy."""

import io

import numpy as np
import pytest

pytest.importorskip("pydicom")

import pydicom

from tests.edge.dicom_peers import (
    Orthanc,
    dciodvfy_errors,
    echoscu,
    listening_addresses,
    require,
    storescu,
)
from tests.edge.dicom_samples import SOP_CLASSES, write_radiograph


def test_orthanc_takes_echo_and_store_on_loopback_and_keeps_them_across_a_restart(tmp_path):
    require("Orthanc", "echoscu", "storescu")
    cr = write_radiograph(tmp_path / "cr.dcm", kind="CR")
    dx = write_radiograph(tmp_path / "dx.dcm", kind="DX", photometric="MONOCHROME1", bits=8)
    pacs = Orthanc(tmp_path / "pacs", ae_title="TESTPACS")
    with pacs:
        assert all(address in ("0100007F", "00000000000000000000000001000000")
                   for address, _ in listening_addresses(pacs.process.pid))
        echo = echoscu(pacs.dicom_port, pacs.ae_title)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        sent = storescu(pacs.dicom_port, [tmp_path / "cr.dcm", tmp_path / "dx.dcm"],
                        pacs.ae_title)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        stored = pacs.wait_for_instances(2, timeout=10)
        assert sorted(t["SOPInstanceUID"] for t in stored) == sorted(
            [cr.SOPInstanceUID, dx.SOPInstanceUID])
        by_uid = {t["SOPInstanceUID"]: t for t in stored}
        assert by_uid[dx.SOPInstanceUID]["PresentationIntentType"] == "FOR PRESENTATION"
        stored_file = pacs.instance_file(by_uid[cr.SOPInstanceUID]["OrthancID"])
        copy = pydicom.dcmread(io.BytesIO(stored_file))
        assert copy.PixelData == cr.PixelData and copy.SOPClassUID == SOP_CLASSES["CR"]

        # PACS down (a crash, not a shutdown), then back: same port, same storage.
        port = pacs.dicom_port
        pacs.stop(graceful=False)
        assert echoscu(port, pacs.ae_title, timeout=5).returncode != 0
        pacs.start()
        assert pacs.dicom_port == port
        assert len(pacs.instances()) == 2
    assert not pacs.running


def test_samples_store_the_image_as_asked(tmp_path):
    gray = np.arange(16 * 24, dtype=np.float64).reshape(16, 24)
    mono2 = write_radiograph(tmp_path / "2.dcm", gray, photometric="MONOCHROME2")
    mono1 = write_radiograph(tmp_path / "1.dcm", gray, photometric="MONOCHROME1")
    small = write_radiograph(tmp_path / "8.dcm", gray, bits=8, kind="DX", view=None)
    read = pydicom.dcmread(tmp_path / "2.dcm")
    assert read.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (read.BitsStored, read.pixel_array.min(), read.pixel_array.max()) == (12, 0, 4095)
    np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "1.dcm").pixel_array,
                                  4095 - read.pixel_array)
    assert pydicom.dcmread(tmp_path / "8.dcm").pixel_array.max() == 255
    assert small.PresentationIntentType == "FOR PRESENTATION" and small.ViewPosition == ""
    assert len({mono1.StudyInstanceUID, mono2.StudyInstanceUID, small.StudyInstanceUID}) == 3


@pytest.mark.parametrize("kind", sorted(SOP_CLASSES))
def test_samples_pass_dciodvfy(tmp_path, kind):
    require("dciodvfy")
    write_radiograph(tmp_path / "a.dcm", kind=kind)
    assert dciodvfy_errors(tmp_path / "a.dcm") == []


def test_dciodvfy_names_what_is_broken(tmp_path):
    require("dciodvfy")
    path = tmp_path / "cr.dcm"
    write_radiograph(path, kind="DX", photometric="MONOCHROME1", bits=8)
    assert isinstance(dciodvfy_errors(path), list)
    write_radiograph(path, extra={"PatientID": None, "StudyInstanceUID": None})
    errors = dciodvfy_errors(path)
    assert any("PatientID" in line for line in errors), errors
    data = path.read_bytes()
    (tmp_path / "short.dcm").write_bytes(data[: len(data) // 2])
    assert dciodvfy_errors(tmp_path / "short.dcm")
