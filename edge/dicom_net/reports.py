"""The two objects a DICOM node sends back to the PACS for one classified image.

structured_report: a Comprehensive SR (TID 1500 Measurement Report) with every class's probability,
the predicted class, the ok/refer/error status and its reason, the site screening decision and the
algorithm's name, version and model sha256, referencing the source image; machine-readable.
secondary_capture: the heat map (or plain image) with the result burned in below it, for a viewer
that shows no SR. Both join the source's patient and study in a new series and say NOT FOR
DIAGNOSTIC USE, since the device is a triage aid, not a diagnosis.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

NOT_FOR_DIAGNOSTIC_USE = "NOT FOR DIAGNOSTIC USE"
SCHEME = "99CXR"  # private coding scheme for the concepts DCM and SCT have no code for
CODES = {
    "procedure": Code("399208008", "SCT", "Plain chest X-ray"),
    "probability": codes.DCM.Probability,
    "threshold": codes.DCM.ThresholdValue,
    "summary": codes.DCM.Summary,
    "positive": codes.SCT.Positive,
    "negative": codes.SCT.Negative,
    "unit": codes.UCUM.NoUnits,
    "predicted_class": Code("CXR001", SCHEME, "Predicted class"),
    "status": Code("CXR002", SCHEME, "Triage status"),
    "ok": Code("CXR003", SCHEME, "Classified"),
    "refer": Code("CXR004", SCHEME, "Referred to a clinician"),
    "error": Code("CXR005", SCHEME, "Not processed"),
    "reason": Code("CXR006", SCHEME, "Triage reason"),
    "error_detail": Code("CXR007", SCHEME, "Error detail"),
    "screen": Code("CXR008", SCHEME, "Screening decision"),
    "screen_score": Code("CXR009", SCHEME, "Screening score"),
    "calibration_id": Code("CXR010", SCHEME, "Site calibration identifier"),
    "ood_score": Code("CXR011", SCHEME, "Out-of-distribution score"),
    "usage": Code("CXR012", SCHEME, "Usage restriction"),
    "sha256": Code("CXR013", SCHEME, "Model file SHA-256"),
}
CLASS_CODES = {
    "COVID": Code("840539006", "SCT", "COVID-19"),
    "Lung_Opacity": Code("CXR101", SCHEME, "Lung opacity, not COVID-19"),
    "Normal": Code("17621005", "SCT", "Normal"),
    "Viral Pneumonia": Code("75570004", "SCT", "Viral pneumonia"),
}
SR_SERIES_NUMBER, SC_SERIES_NUMBER = 9901, 9902
_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                  "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


@dataclass(frozen=True)
class Algorithm:
    name: str  # e.g. "cxr-edge attention"
    version: str  # the model version
    sha256: str  # the model file's sha256
    manufacturer: str = "cxr-edge"


def structured_report(source: pydicom.Dataset, record: dict,
                      algorithm: Algorithm) -> pydicom.Dataset:
    """A Comprehensive SR of `record` (a result record, edge/record.py) for the image `source`."""
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=_algorithm_uid(algorithm), name=algorithm.name,
        manufacturer_name=algorithm.manufacturer, model_name=algorithm.version)
    context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.cid270.Device, observer_identifying_attributes=device))
    source_image = hd.sr.SourceImageForMeasurementGroup(source.SOPClassUID, source.SOPInstanceUID)
    groups = [_result_group(record, algorithm, source_image)] + [
        _class_group(name, p, algorithm, source_image)
        for name, p in (record.get("probabilities") or {}).items()]
    report = hd.sr.MeasurementReport(observation_context=context,
                                     procedure_reported=CODES["procedure"],
                                     imaging_measurements=groups)
    return hd.sr.ComprehensiveSR(
        evidence=[_evidence(source)], content=report[0], series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=algorithm.manufacturer, is_complete=True,
        series_description=_series_description(algorithm, "result"),
        software_versions=algorithm.version, coding_schemes=[_private_scheme()])


def secondary_capture(source: pydicom.Dataset, record: dict, algorithm: Algorithm,
                      image: Image.Image) -> pydicom.Dataset:
    """An RGB Secondary Capture of `image` with the result burned in as a band below it."""
    pixels = np.asarray(_with_band(image.convert("RGB"), _band_lines(record, algorithm)))
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=_evidence(source), pixel_array=pixels, photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=generate_uid(),
        series_number=SC_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=algorithm.manufacturer, patient_orientation=("L", "F"),
        transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian,
        series_description=_series_description(algorithm, "overlay"),
        software_versions=algorithm.version)
    # The placeholder above satisfies highdicom; the band is appended below the image, so rows
    # and columns keep the source's directions (empty: unknown).
    orientation = source.get("PatientOrientation")
    sc.PatientOrientation = list(orientation) if orientation and len(orientation) == 2 else None
    # Laterality (Type 2C): the source's; absent for a known body part; else empty (unknown).
    laterality = source.get("Laterality") or source.get("ImageLaterality")
    if laterality in ("L", "R"):
        sc.Laterality = laterality
    if source.get("BodyPartExamined"):
        sc.BodyPartExamined = source.BodyPartExamined
    elif "Laterality" not in sc:
        sc.Laterality = None
    sc.ConversionType = "SYN"
    sc.BurnedInAnnotation = "YES"
    sc.RecognizableVisualFeatures = "NO"
    sc.ImageComments = NOT_FOR_DIAGNOSTIC_USE
    sc.DerivationDescription = f"{algorithm.name} {algorithm.version} result over the source image"
    reference = pydicom.Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [reference]
    return sc


def _summary(record: dict) -> str:
    """One line of the result: "COVID 0.93 ok", "REFER: low_confidence (COVID 0.41)" or
    "ERROR: truncated - not classified"."""
    status, reason, cls = record.get("status"), record.get("reason"), record.get("predicted_class")
    scored = f"{cls} {record['probability']:.2f}" if cls and record.get("probability") is not None \
        else None
    if status == "ok" and scored:
        return f"{scored} ok"
    return f"{str(status).upper()}: {reason or 'unknown'}" + (f" ({scored})" if scored
                                                               else " - not classified")


def _result_group(record: dict, algorithm: Algorithm, source_image) -> hd.sr.Template:
    """The TID 1501 group of the decision: class, status, reason, screening, identification."""
    status = record.get("status") if record.get("status") in ("ok", "refer") else "error"
    evaluations = [hd.sr.QualitativeEvaluation(CODES["status"], CODES[status])]
    if record.get("predicted_class") in CLASS_CODES:
        evaluations.append(hd.sr.QualitativeEvaluation(
            CODES["predicted_class"], CLASS_CODES[record["predicted_class"]]))
    if record.get("screen") is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(
            CODES["screen"], CODES["positive" if record["screen"] == "positive" else "negative"]))
    numbers = [("ood_score", "ood_score")]
    if record.get("screen") is not None:
        numbers += [("threshold", "screen_threshold"), ("screen_score", "screen_score")]
    measurements = [hd.sr.Measurement(CODES[key], float(record[field]), CODES["unit"])
                    for key, field in numbers if record.get(field) is not None]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="cxr-edge result"),
        algorithm_id=_algorithm_id(algorithm), source_images=[source_image],
        measurements=measurements, qualitative_evaluations=evaluations)
    texts = [("summary", _summary(record)), ("reason", record.get("reason")),
             ("error_detail", record.get("error")), ("usage", NOT_FOR_DIAGNOSTIC_USE),
             ("sha256", algorithm.sha256)]
    if record.get("screen") is not None:
        texts.append(("calibration_id", record.get("calibration_id")))
    group[0].ContentSequence.extend(
        hd.sr.TextContentItem(name=CODES[key], value=str(value)[:1024],
                              relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        for key, value in texts if value)
    return group


def _class_group(name: str, probability: float, algorithm: Algorithm,
                 source_image) -> hd.sr.Template:
    """One class's TID 1501 group: the finding is the class, its one NUM is the probability."""
    finding = CLASS_CODES.get(name) or Code(name[:16], SCHEME, name)  # a class new to this module
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"cxr-edge class {name}"),
        finding_type=finding, algorithm_id=_algorithm_id(algorithm),
        source_images=[source_image],
        measurements=[hd.sr.Measurement(CODES["probability"], float(probability), CODES["unit"])])


def _algorithm_id(algorithm: Algorithm) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=algorithm.name, version=algorithm.version,
                                         parameters=[f"model sha256 {algorithm.sha256}"],
                                         manufacturer=algorithm.manufacturer)


def _algorithm_uid(algorithm: Algorithm) -> str:
    # One stable Device Observer UID per model file, so a PACS can group a model's results.
    return generate_uid(entropy_srcs=[algorithm.name, algorithm.version, algorithm.sha256])


def _private_scheme() -> hd.coding_schemes.CodingSchemeIdentificationItem:
    return hd.coding_schemes.CodingSchemeIdentificationItem(
        designator=SCHEME, name="cxr-edge private concepts", responsible_organization="cxr-edge")


def _series_description(algorithm: Algorithm, what: str) -> str:
    return f"{algorithm.name} {what} - {NOT_FOR_DIAGNOSTIC_USE}"[:64]


def _evidence(source: pydicom.Dataset) -> pydicom.Dataset:
    """The source's attributes without its pixels, with the empty Type 2 patient/study ones that
    highdicom reads unguarded."""
    evidence = pydicom.Dataset()
    for element in source:
        if element.tag.group != 0x7FE0:  # pixel data: large, and an SR never needs it
            evidence.add(copy.deepcopy(element))
    for keyword in _PATIENT_STUDY:
        if keyword not in evidence:
            setattr(evidence, keyword, None)
    return evidence


def _band_lines(record: dict, algorithm: Algorithm) -> list[str]:
    lines = [_summary(record)]
    if record.get("screen") is not None:
        lines.append(f"screen {record['screen']} (threshold {record.get('screen_threshold')},"
                     f" calibration {record.get('calibration_id')})")
    return lines + [f"{algorithm.name} {algorithm.version}", NOT_FOR_DIAGNOSTIC_USE]


def _with_band(image: Image.Image, lines: list[str]) -> Image.Image:
    """`image` over a black band holding `lines`, the font as large as the widest line allows."""
    size = max(8, image.width // 40)
    font = _font(size)
    probe = ImageDraw.Draw(image)
    widest = max(probe.textlength(line, font=font) for line in lines)
    if widest > image.width * 0.96:  # shrink to fit the width, down to a still-legible 6 px
        size = max(6, int(size * image.width * 0.96 / widest))
        font = _font(size)
    pad = max(2, size // 3)
    band_height = len(lines) * (size + pad) + pad
    out = Image.new("RGB", (image.width, image.height + band_height), (0, 0, 0))
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        color = (255, 64, 64) if line == NOT_FOR_DIAGNOSTIC_USE else (255, 255, 255)
        draw.text((pad, image.height + pad + i * (size + pad)), line, fill=color, font=font)
    return out


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
