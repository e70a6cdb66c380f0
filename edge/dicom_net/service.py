"""The node beside a station: the SCP, and the outbox's delivery thread when results go back.

`cxr-edge serve --dicom-port` and `cxr-edge dicom-listen` both run this on a Station, so the
network and the page share one interpreter queue and one history.
"""

from __future__ import annotations

import dataclasses
import logging

from edge.dicom_net.node import DicomNode
from edge.dicom_net.options import DicomOptions
from edge.dicom_net.outbox import Delivery, Outbox
from edge.dicom_net.scp import Listening, listen
from edge.dicom_net.sender import sender

log = logging.getLogger(__name__)

MANIFEST_MIN_AGE = "min_patient_age"  # years; written by whoever trained on younger patients


class NodeService:
    def __init__(self, station, options: DicomOptions):
        manifest = station.slot.current.classifier.model.manifest or {}
        if options.checks.min_age is None and manifest.get(MANIFEST_MIN_AGE) is not None:
            # the model says it was trained on younger patients: its word, not WHO's default
            options = dataclasses.replace(options, checks=dataclasses.replace(
                options.checks, min_age=float(manifest[MANIFEST_MIN_AGE])))
        self.options = options
        self.outbox = Outbox(station.database, options.retry_first_s, options.retry_max_s)
        self.node = DicomNode(station.queue, station.options.data_dir, options,
                              self.outbox if options.send_to else None)
        self.delivery = (Delivery(self.outbox, options.send_to, sender(options.ae_title))
                         if options.send_to else None)
        self.listening: Listening | None = None

    @property
    def port(self) -> int | None:
        return self.listening.port if self.listening else None

    def start(self) -> None:
        if self.delivery is not None:
            self.delivery.start()  # first: what waited across a restart goes out now
        self.listening = listen(self.node)

    def stop(self) -> None:
        if self.listening is not None:
            self.listening.stop()
            self.listening = None
        if self.delivery is not None:
            self.delivery.stop()

    def status(self) -> dict:
        return {"ae_title": self.options.ae_title, "port": self.port,
                "send_to": str(self.options.send_to) if self.options.send_to else None,
                "outbox": self.outbox.summary()}
