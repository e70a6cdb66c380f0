"""Is this DICOM object a chest radiograph the model may read? Decided from its header alone.

A DICOM node receives whatever the X-ray unit or PACS router sends: laterals, hands, children,
raw "for processing" frames. Each is answered before inference with a reason a radiographer
can act on (docs/dicom-node.md), the way CAD products reject unsuitable inputs by header code.
Every check can be turned off (HeaderChecks). pydicom only: no network code here.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

UNSUPPORTED_SOP_CLASS = "unsupported_sop_class"  # not CR, DX for presentation or chest SC
UNSUPPORTED_BODY_PART = "unsupported_body_part"  # BodyPartExamined names another part
UNSUPPORTED_VIEW = "unsupported_view"  # a lateral or other non-frontal projection
UNSUPPORTED_PATIENT = "unsupported_patient"  # younger than the model is meant for
UNSUPPORTED_PRESENTATION = "unsupported_presentation"  # DX "FOR PROCESSING" (raw detector data)
REASONS = (UNSUPPORTED_SOP_CLASS, UNSUPPORTED_BODY_PART, UNSUPPORTED_VIEW, UNSUPPORTED_PATIENT,
           UNSUPPORTED_PRESENTATION)

CR = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
RADIOGRAPH_SOP_CLASSES = (CR, DX_PRESENTATION, DX_PROCESSING, SECONDARY_CAPTURE)
# CHEST is DICOM's defined term; some vendors write THORAX.
CHEST_BODY_PARTS = ("CHEST", "THORAX")
FRONTAL_VIEWS = ("PA", "AP")
# WHO's recommendation for CAD on chest X-rays covers people aged 15 and over.
DEFAULT_MIN_AGE = 15.0
_AGE = re.compile(r"^(\d{3})([DWMY])$")
_DAYS_PER = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}


@dataclass(frozen=True)
class HeaderChecks:
    sop_class: bool = True
    body_part: bool = True
    view: bool = True
    age: bool = True
    presentation: bool = True
    min_age: float | None = None  # years; None: the manifest's min_patient_age, else 15

    @classmethod
    def off(cls) -> HeaderChecks:
        return cls(False, False, False, False, False)


class Unsuitable(ValueError):
    """An object the checks turn away; `.reason` is one of REASONS."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def check_header(dataset, checks: HeaderChecks = HeaderChecks()) -> None:
    """Raises Unsuitable for the first check the header fails; returns None if it may be read.

    Absent optional attributes (no ViewPosition, no age) pass: many CR units leave them empty,
    and refusing them would refuse most of a clinic's work."""
    sop_class = str(dataset.get("SOPClassUID", "") or "")
    body_part = _text(dataset, "BodyPartExamined")
    if checks.sop_class:
        if sop_class not in RADIOGRAPH_SOP_CLASSES:
            raise Unsuitable(UNSUPPORTED_SOP_CLASS,
                             f"SOP class {sop_class or '(none)'} ({_sop_name(sop_class)}) is not "
                             "a CR, DX or chest Secondary Capture radiograph")
        if sop_class == SECONDARY_CAPTURE and body_part not in CHEST_BODY_PARTS:
            raise Unsuitable(UNSUPPORTED_SOP_CLASS, "a Secondary Capture is read only when its "
                             f"BodyPartExamined is CHEST (it is {body_part or 'absent'})")
    if checks.presentation and (sop_class == DX_PROCESSING or _text(
            dataset, "PresentationIntentType") == "FOR PROCESSING"):
        raise Unsuitable(UNSUPPORTED_PRESENTATION, "a DX image FOR PROCESSING is raw detector "
                         "data; send the FOR PRESENTATION image the unit makes from it")
    if checks.body_part and body_part and body_part not in CHEST_BODY_PARTS:
        raise Unsuitable(UNSUPPORTED_BODY_PART, f"BodyPartExamined is {body_part}, not CHEST")
    view = _text(dataset, "ViewPosition")
    if checks.view and view and view not in FRONTAL_VIEWS:
        raise Unsuitable(UNSUPPORTED_VIEW, f"ViewPosition is {view}; the model reads frontal "
                         "(PA or AP) chest images only")
    if checks.age:
        minimum = DEFAULT_MIN_AGE if checks.min_age is None else checks.min_age
        age = patient_age_years(dataset)
        if age is not None and age < minimum:
            raise Unsuitable(UNSUPPORTED_PATIENT, f"the patient is {age:.1f} years old; the "
                             f"model is meant for patients aged {minimum:g} and over")


def patient_age_years(dataset) -> float | None:
    """PatientAge ("045Y", "006M", ...), else the birth date to the study date; None if unknown."""
    match = _AGE.match(_text(dataset, "PatientAge"))
    if match:
        return int(match.group(1)) * _DAYS_PER[match.group(2)] / _DAYS_PER["Y"]
    born = _date(dataset, "PatientBirthDate")
    seen = next((day for day in (_date(dataset, key) for key in
                                 ("StudyDate", "AcquisitionDate", "ContentDate")) if day), None)
    if born is None or seen is None or seen < born:
        return None
    return (seen - born).days / _DAYS_PER["Y"]


def _text(dataset, keyword: str) -> str:
    try:
        value = dataset.get(keyword)
    except Exception:  # a damaged value: treated as absent; the decoder reports damage
        return ""
    return str(value or "").strip().upper()


def _date(dataset, keyword: str) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(_text(dataset, keyword)[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _sop_name(uid: str) -> str:
    try:
        from pydicom.uid import UID
        return UID(uid).name if uid else "absent"
    except Exception:
        return "unknown"
