"""Draws docs/dicom-secondary-capture.png: what a PACS viewer shows of the node's answer.

A synthetic phantom (never a patient) goes through the node's own path in-process: header
checks, the classifier, the history, and the Secondary Capture the outbox would send.

    .venv-edge/bin/python -m tools.dicom_picture --model DIR_OR_TFLITE [--out PNG]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from components.lib.demo_data import render_phantom
from edge.dicom_net.node import DicomNode
from edge.dicom_net.options import Caller, Destination, DicomOptions
from edge.dicom_net.outbox import Outbox
from edge.manifest import write_model_dir
from edge.serve.options import ServeOptions
from edge.serve.station import Station

CR = "1.2.840.10008.5.1.4.1.1.1"
SIDE = 512


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a pushed model dir or a .tflite")
    parser.add_argument("--out", default="docs/dicom-secondary-capture.png")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        model = Path(args.model)
        if model.suffix == ".tflite":
            write_model_dir(Path(work) / "model", model, variant="float32",
                            synthetic_data=True)
            model = Path(work) / "model"
        station = Station(ServeOptions(model=str(model), data_dir=str(Path(work) / "data")))
        station.start()
        try:
            options = DicomOptions(allow=(Caller.parse("PICTURE"),),
                                   send_to=Destination("PACS", "127.0.0.1", 104))
            outbox = Outbox(station.database, options.retry_first_s, options.retry_max_s)
            node = DicomNode(station.queue, work, options, outbox)
            node.receive(_phantom_cr(), "PICTURE", "127.0.0.1")
            data = station.database.one("SELECT data FROM outbox WHERE kind = 'sc'")[0]
        finally:
            station.stop()
    pixels = pydicom.dcmread(io.BytesIO(data)).pixel_array
    Image.fromarray(pixels.astype(np.uint8)).save(args.out, optimize=True)
    print(f"wrote {args.out} ({pixels.shape[1]}x{pixels.shape[0]})")
    return 0


def _phantom_cr() -> bytes:
    gray = np.asarray(render_phantom("Lung_Opacity", 0, size=SIDE), dtype=np.uint16) * 16
    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = CR
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.PatientName, dataset.PatientID = "SYNTHETIC^PHANTOM", "PHANTOM-0001"
    dataset.Modality, dataset.BodyPartExamined, dataset.ViewPosition = "CR", "CHEST", "PA"
    dataset.StudyDate, dataset.PatientAge = "20261207", "040Y"
    dataset.Rows = dataset.Columns = SIDE
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = gray.tobytes()
    buffer = pydicom.filebase.DicomBytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())
