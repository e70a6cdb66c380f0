"""Artifact types of the project's own components (reports a person reads)."""

from tfx.types.artifact import Artifact


class QuarantineReport(Artifact):
    """Files the ExampleGen rejected: quarantine.json and quarantine.csv (path, reason, message)."""

    TYPE_NAME = "cxredge.QuarantineReport"


class IngestSummary(Artifact):
    """summary.json (class names, counts per class and split, duplicates) and index.jsonl."""

    TYPE_NAME = "cxredge.IngestSummary"


class ImageValidationFindings(Artifact):
    """findings.json written by the ImageValidator, whether it passed or not."""

    TYPE_NAME = "cxredge.ImageValidationFindings"
