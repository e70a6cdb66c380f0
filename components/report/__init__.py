"""Run report: one self-contained HTML page per pipeline run (PNG charts embedded).

Sections: data summary (counts per split and class, quarantined files, duplicates, image
validation), training curves, confusion matrix and per-class table, Siamese embedding plots,
attention (pointing game on the phantoms' finding masks, heat-map overlays), the TFLite
variants table, the acquisition-shift battery, and every gate with its threshold. Every input
is optional: a missing artifact becomes a line saying so, not an error. The page says plainly,
at the top, when the data are synthetic. Reads and writes go through tfx.dsl.io.fileio
(components/lib/storage.py), so the artifacts may live on gs:// or s3://.

Modules:
  inputs             ReportInputs: the run's artifact directories
  attention          measure_attention: runs the models, returns the attention numbers
  page               the HTML page builder and shared formatting
  sections           the sections that render recorded numbers
  attention_section  renders what measure_attention returned
  shift_section      renders variants.json's acquisition-shift battery
  component          write_report and the RunReportGen TFX component
"""

from components.report.attention import AttentionFindings, measure_attention
from components.report.component import REPORT_FILENAME, RunReport, RunReportGen, write_report
from components.report.inputs import ReportInputs

__all__ = [
    "REPORT_FILENAME",
    "AttentionFindings",
    "ReportInputs",
    "RunReport",
    "RunReportGen",
    "measure_attention",
    "write_report",
]
