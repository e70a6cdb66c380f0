"""Small, valid DICOM radiographs (and non-radiographs) with the headers a test chooses.

    ds = write_radiograph(tmp_path / "a.dcm", kind="DX", view="AP", photometric="MONOCHROME1")

Each file is a Part 10 file (file meta, explicit VR little endian) with new Study, Series
and SOP Instance UIDs, the SOP class of `kind`, and the modules its IOD needs, so that
dciodvfy finds no errors in the default samples. Headers given as None are written empty
when the IOD has them as type 2 (DICOM's "unknown"), left out when type 3; `extra` sets any
other attribute by keyword, and `extra={"BodyPartExamined": None}` removes one altogether.
Invalid on purpose, when asked: kind="CT" with bits=8 (the CT IOD wants 16), kind="MG"
without a view or an anatomy (type 1 code sequences there). body_part is not adjusted to
kind: pass body_part="BREAST", view="CC" for a realistic mammogram.

tests/edge/fuzz.py's dicom_bytes is the deterministic minimal CR for the fuzzer; this one
is for header-driven tests (routing, triage gates, PACS round trips).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from tests.edge.conftest import radiograph_like

SOP_CLASSES = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "DX_PROCESSING": "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray - For Processing
    "SC": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray - For Presentation
}
MODALITIES = {"CR": "CR", "DX": "DX", "DX_PROCESSING": "DX", "SC": "OT", "CT": "CT", "MG": "MG"}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


# SNOMED CT codes (DICOM CID 4 / CID 4010) for the anatomy and views the samples use.
ANATOMY = {"CHEST": ("51185008", "Thorax"), "BREAST": ("76752008", "Breast")}
VIEWS = {
    "PA": ("399348003", "postero-anterior"),
    "AP": ("399182009", "antero-posterior"),
    "LL": ("399173006", "left lateral"),
    "RL": ("399198007", "right lateral"),
    "CC": ("399162004", "cranio-caudal"),
    "MLO": ("399368009", "medio-lateral oblique"),
}
# Patient Orientation (row, column direction) of the conventional display of each view.
ORIENTATIONS = {"PA": ["L", "F"], "AP": ["L", "F"], "LL": ["P", "F"], "RL": ["A", "F"]}


def _stored(gray: np.ndarray, photometric: str, bits: int) -> tuple[np.ndarray, int]:
    """`gray` rescaled to 0..4095 (16 bits allocated, 12 stored) or 0..255 (8 bits)."""
    values = np.asarray(gray, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"gray must be 2-D, got shape {values.shape}")
    low, high = float(values.min()), float(values.max())
    unit = (values - low) / (high - low) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit  # bright (dense) anatomy becomes low stored values
    elif photometric != "MONOCHROME2":
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric}")
    if bits == 16:
        return np.rint(unit * 4095).astype(np.uint16), 12
    if bits == 8:
        return np.rint(unit * 255).astype(np.uint8), 8
    raise ValueError(f"bits must be 8 or 16, got {bits}")


def write_radiograph(path: Path, gray: np.ndarray | None = None, *, kind: str = "CR",
                     body_part: str | None = "CHEST", view: str | None = "PA",
                     patient_age: str | None = "045Y", birth_date: str | None = None,
                     study_date: str | None = "20261201", photometric: str = "MONOCHROME2",
                     bits: int = 16, patient_id: str = "PAT-0001",
                     accession: str | None = "ACC-0001", study_uid: str | None = None,
                     size: int = 64, extra: Mapping[str, object] | None = None) -> Dataset:
    """Writes a one-frame DICOM image of `gray` (default: a chest-like size x size image)."""
    if kind not in SOP_CLASSES:
        raise ValueError(f"kind must be one of {sorted(SOP_CLASSES)}, got {kind!r}")
    if gray is None:
        gray = radiograph_like(size, size)
    pixels, bits_stored = _stored(gray, photometric, bits)
    dx = kind in ("DX", "DX_PROCESSING", "MG")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[kind]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate, ds.InstanceCreationTime = study_date or "20261201", "101500"

    # Patient, General Study, Patient Study
    ds.PatientName = "TEST^CXR"
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date or ""
    ds.PatientSex = "O"
    if patient_age is not None:
        ds.PatientAge = patient_age
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.StudyDate = study_date or ""
    ds.StudyTime = "101500" if study_date else ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = accession or ""
    ds.StudyDescription = f"{body_part or ''} {kind}".strip()

    # General Series (+ CR/DX/MG series), General Equipment
    ds.Modality = MODALITIES[kind]
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    if study_date:
        ds.SeriesDate, ds.SeriesTime = study_date, "101500"
    ds.Manufacturer = "cxr-edge tests"
    ds.InstitutionName = "Test Hospital"
    ds.StationName = "TESTSTATION"

    # General Image (+ the IOD's image module)
    ds.InstanceNumber = 1
    ds.ContentDate = study_date or ""
    ds.ContentTime = "101500" if study_date else ""
    ds.PatientOrientation = ORIENTATIONS.get(view or "", "")
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    if body_part is not None or kind in ("CR", "DX", "DX_PROCESSING", "MG"):
        ds.BodyPartExamined = body_part or ""
    if kind in ("CR", "DX", "DX_PROCESSING", "MG"):  # not in the SC or CT IODs
        ds.ViewPosition = view or ""

    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    top = (1 << bits_stored) - 1
    ds.WindowCenter, ds.WindowWidth = (top + 1) // 2, top + 1

    if not dx and not body_part:
        ds.Laterality = ""  # type 2C: the body part might be a paired one
    if kind == "CR":
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.KVP = 120
        ds.ImagerPixelSpacing = [0.5, 0.5]
    elif dx:
        _dx_modules(ds, kind, body_part, view, photometric)
    elif kind == "SC":
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"
    elif kind == "CT":
        _ct_modules(ds)

    for keyword, value in (extra or {}).items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def _dx_modules(ds: Dataset, kind: str, body_part: str | None, view: str | None,
                photometric: str) -> None:
    """DX Series/Image/Detector/Anatomy/Positioning (and Mammography Series/Image)."""
    processing = kind == "DX_PROCESSING"
    ds.PresentationIntentType = "FOR PROCESSING" if processing else "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelIntensityRelationship = "LIN" if processing else "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    if processing:
        del ds.WindowCenter, ds.WindowWidth
    ds.DetectorType = "SCINTILLATOR"
    ds.ImagerPixelSpacing = [0.5, 0.5]
    ds.KVP = 28 if kind == "MG" else 120
    ds.ImageLaterality = "L" if kind == "MG" else "U"
    anatomy = ANATOMY.get(body_part or "")
    if anatomy is not None:
        ds.AnatomicRegionSequence = Sequence([_code(anatomy[0], "SCT", anatomy[1])])
    else:
        ds.AnatomicRegionSequence = Sequence()
    code = VIEWS.get(view or "")
    if code is not None:
        item = _code(code[0], "SCT", code[1])
        if kind == "MG":
            item.ViewModifierCodeSequence = Sequence()
        ds.ViewCodeSequence = Sequence([item])
    elif kind == "MG":
        ds.ViewCodeSequence = Sequence()  # type 1 there: an MG without a view is invalid
    if not ds.PatientOrientation:
        ds.PatientOrientation = ["L", "F"]  # type 1C in DX Image
    ds.AcquisitionContextSequence = Sequence()
    if kind == "MG":
        ds.PositionerType = "MAMMOGRAPHIC"
        ds.DistanceSourceToDetector = 650
        ds.DistanceSourceToPatient = 600
        ds.EstimatedRadiographicMagnificationFactor = round(650 / 600, 4)
        ds.OrganExposed = "BREAST"
        ds.BodyPartThickness = 50
        ds.CompressionForce = 100
        ds.PatientOrientation = ["A", "R"]
    else:
        ds.PositionerType = ""


def _ct_modules(ds: Dataset) -> None:
    """CT Image, Image Plane, Frame of Reference (a single axial slice)."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.PixelSpacing = [0.7, 0.7]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.SliceThickness = 1.0
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientation = ""
    ds.PatientPosition = "HFS"

