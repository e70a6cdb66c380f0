"""The DICOM node: receive images from an X-ray unit or PACS, check, classify, send results back.

Only edge/dicom_net/scp.py and edge/dicom_net/sender.py import pynetdicom (the dicom-net extra).
"""
