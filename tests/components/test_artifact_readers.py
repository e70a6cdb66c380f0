"""Each producer's reader: None when the record is absent, a named error when it is damaged,
and what the producer's own writer wrote when it is there."""

import json

import pytest

from components.edge_pusher import PUSH_RECORD, read_push_record
from components.image_example_gen.executor import (
    QUARANTINE_JSON,
    read_ingest_summary,
    read_quarantine_report,
    write_quarantine_report,
)
from components.image_validator import read_findings
from components.lib import storage
from components.quantizer import VARIANTS_FILENAME, read_variants_table


@pytest.mark.parametrize("reader", [read_ingest_summary, read_quarantine_report, read_findings,
                                    read_variants_table, read_push_record])
def test_no_directory_or_no_file_reads_as_none(reader, tmp_path):
    assert reader(None) is None
    assert reader(str(tmp_path)) is None


def test_the_quarantine_reader_reads_what_its_writer_wrote(tmp_path):
    entries = [{"path": "COVID/images/a.png", "reason": "truncated", "message": "cut short"}]
    write_quarantine_report(str(tmp_path), entries)
    report = read_quarantine_report(str(tmp_path))
    assert report["count"] == 1 and report["files"] == entries
    assert report["by_reason"] == {"truncated": 1}


@pytest.mark.parametrize("filename,reader,needed", [
    (QUARANTINE_JSON, read_quarantine_report, "files"),
    (PUSH_RECORD, read_push_record, "reason"),
    (VARIANTS_FILENAME, read_variants_table, "variants"),
])
def test_a_damaged_record_names_its_file_and_what_is_missing(tmp_path, filename, reader, needed):
    (tmp_path / filename).write_text(json.dumps({"count": 1, "pushed": True}))
    with pytest.raises(storage.ArtifactFileError, match=needed) as error:
        reader(str(tmp_path))
    assert filename in str(error.value)


def test_missing_reason_says_whether_the_producer_ran():
    assert "did not run" in storage.missing_reason(None, PUSH_RECORD, "EdgePusher")
    assert "/x/y" in storage.missing_reason("/x/y", PUSH_RECORD, "EdgePusher")
