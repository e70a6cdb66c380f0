"""Custom ExampleGen for class-folder trees of X-ray images (PNG/JPEG/DICOM)."""
