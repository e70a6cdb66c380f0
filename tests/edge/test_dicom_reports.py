"""The SR and Secondary Capture that edge/dicom_net/reports.py builds for one result."""

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from edge.dicom_net.reports import (
    NOT_FOR_DIAGNOSTIC_USE,
    Algorithm,
    secondary_capture,
    structured_report,
)

CR, DX = "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1"
ALGORITHM = Algorithm("cxr-edge attention", "1.4.0", "0123456789abcdef" * 4)
OPTIONAL = ("PatientName", "AccessionNumber", "StudyID", "ReferringPhysicianName", "SeriesNumber",
            "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "PatientOrientation",
            "BodyPartExamined")
OK = {"status": "ok", "reason": None, "error": None, "predicted_class": "COVID",
      "probability": 0.93, "ood_score": 0.12, "stability": 0.99, "inference_ms": 5.0,
      "probabilities": {"COVID": 0.93, "Lung_Opacity": 0.04, "Normal": 0.02,
                        "Viral Pneumonia": 0.01},
      "screen": "positive", "screen_threshold": 0.35, "screen_score": 0.93,
      "calibration_id": "site-a-2025-01"}
REFER = dict(OK, status="refer", reason="out_of_distribution", predicted_class=None,
             probability=None, probabilities=None, screen=None, screen_threshold=None,
             screen_score=None, calibration_id=None)


def source(sop_class=CR, photometric="MONOCHROME2", bits=16, drop=()) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR" if sop_class == CR else "DX"
    ds.PatientID, ds.PatientName = "P-7", "Doe^Jo"
    ds.PatientBirthDate, ds.PatientSex = "19600101", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20250102", "0930", "ACC1", "ST1"
    ds.ReferringPhysicianName, ds.SeriesNumber, ds.InstanceNumber = "", 3, 1
    ds.PatientOrientation, ds.BodyPartExamined = ["L", "F"], "CHEST"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    dtype = np.uint16 if bits == 16 else np.uint8
    ds.PixelData = np.arange(64 * 64, dtype=dtype).tobytes()
    for keyword in drop:
        delattr(ds, keyword)
    return ds


SOURCES = {
    "cr": lambda: source(),
    "dx_8bit": lambda: source(DX, bits=8),
    "monochrome1": lambda: source(photometric="MONOCHROME1"),
    "missing_optional": lambda: source(drop=OPTIONAL),
}


def items(sequence):
    """Every content item of an SR tree, depth first."""
    for item in sequence:
        yield item
        yield from items(item.get("ContentSequence", []))


def by_meaning(sr, meaning):
    return [i for i in items(sr.ContentSequence)
            if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def texts(sr):
    return [i.TextValue for i in items(sr.ContentSequence) if i.ValueType == "TEXT"]


def gray_image():
    return Image.fromarray(np.tile(np.linspace(20, 200, 64, dtype=np.uint8), (64, 1)), "L")


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_sr_carries_the_result_and_joins_the_study(kind):
    src = SOURCES[kind]()
    sr = structured_report(src, OK, ALGORITHM)
    probabilities = {}
    for group in by_meaning(sr, "Measurement Group"):
        finding = [i for i in group.ContentSequence
                   if i.ConceptNameCodeSequence[0].CodeMeaning == "Finding"]
        if finding:
            name = next(i.TextValue for i in group.ContentSequence
                        if i.ConceptNameCodeSequence[0].CodeMeaning == "Tracking Identifier")
            (num,) = [i for i in group.ContentSequence if i.ValueType == "NUM"]
            probabilities[name.removeprefix("cxr-edge class ")] = float(
                num.MeasuredValueSequence[0].NumericValue)
    assert probabilities == pytest.approx(OK["probabilities"])
    (predicted,) = by_meaning(sr, "Predicted class")
    assert predicted.ConceptCodeSequence[0].CodeMeaning == "COVID-19"
    (decision,) = by_meaning(sr, "Screening decision")
    assert decision.ConceptCodeSequence[0].CodeMeaning == "Positive"
    (threshold,) = by_meaning(sr, "Threshold Value")
    assert float(threshold.MeasuredValueSequence[0].NumericValue) == pytest.approx(0.35)
    assert "site-a-2025-01" in texts(sr) and "COVID 0.93 ok" in texts(sr)
    assert NOT_FOR_DIAGNOSTIC_USE in texts(sr) and NOT_FOR_DIAGNOSTIC_USE in sr.SeriesDescription
    assert ALGORITHM.sha256 in texts(sr)
    assert [i.TextValue for i in by_meaning(sr, "Algorithm Version")][0] == ALGORITHM.version
    refs = [i.ReferencedSOPSequence[0] for i in items(sr.ContentSequence) if i.ValueType == "IMAGE"]
    assert refs and {r.ReferencedSOPInstanceUID for r in refs} == {src.SOPInstanceUID}
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert (sr.StudyInstanceUID, sr.PatientID) == (src.StudyInstanceUID, src.PatientID)
    assert sr.SeriesInstanceUID != src.SeriesInstanceUID
    assert sr.SOPInstanceUID != src.SOPInstanceUID and sr.Manufacturer == ALGORITHM.manufacturer
    assert (sr.get("AccessionNumber") or "") == (src.get("AccessionNumber") or "")
    assert (sr.get("PatientName") or "") == (src.get("PatientName") or "")


def test_sr_of_an_unclassified_image_says_why():
    sr = structured_report(source(), REFER, ALGORITHM)
    assert "out_of_distribution" in texts(sr)
    assert "REFER: out_of_distribution - not classified" in texts(sr)
    (status,) = by_meaning(sr, "Triage status")
    assert status.ConceptCodeSequence[0].CodeMeaning == "Referred to a clinician"
    assert not by_meaning(sr, "Probability") and not by_meaning(sr, "Predicted class")
    assert not by_meaning(sr, "Screening decision")


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_secondary_capture_burns_the_result_in(kind):
    src = SOURCES[kind]()
    image = gray_image() if kind != "cr" else gray_image().convert("RGB")
    sc = secondary_capture(src, OK, ALGORITHM, image)
    assert sc.BurnedInAnnotation == "YES" and sc.PhotometricInterpretation == "RGB"
    assert sc.BitsAllocated == 8 and sc.ConversionType in ("WSD", "SYN")
    assert (sc.StudyInstanceUID, sc.PatientID) == (src.StudyInstanceUID, src.PatientID)
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID
    assert NOT_FOR_DIAGNOSTIC_USE in sc.SeriesDescription
    pixels = sc.pixel_array
    original = np.asarray(image.convert("RGB"))
    assert pixels.shape[1:] == (64, 3) and pixels.shape[0] > 64
    assert np.array_equal(pixels[:64], original)  # the image itself is not covered
    band = pixels[64:]
    assert not np.array_equal(band, np.broadcast_to(original[-1], band.shape[1:]))
    assert band.max() > 200  # the text is drawn


@pytest.mark.parametrize("kind", ["cr", "missing_optional"])
@pytest.mark.parametrize("record", [OK, REFER], ids=["ok", "refer"])
def test_both_objects_pass_dciodvfy(tmp_path, kind, record):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    src = SOURCES[kind]()
    objects = {"sr": structured_report(src, record, ALGORITHM),
               "sc": secondary_capture(src, record, ALGORITHM, gray_image())}
    for name, dataset in objects.items():
        path = tmp_path / f"{name}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        pydicom.dcmread(path)  # it reads back
        out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                             timeout=30)
        errors = [line for line in (out.stdout + out.stderr).splitlines()
                  if line.startswith("Error")]
        assert not errors, f"{name}: {errors}"
