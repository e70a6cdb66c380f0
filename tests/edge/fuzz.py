"""Mutation fuzzing of edge.imageio.load_grayscale: seeded, reproducible, format-aware.

Small valid samples (PNG, JPEG, 16-bit PNG, TIFF, DICOM: explicit and implicit VR,
MONOCHROME1, windowed, rescaled) are mutated by byte flips, deletions, insertions and
overwrites; for DICOM half the cases aim at the header, where one wrong value type sends
pydicom down paths that raise anything from TypeError to NotImplementedError. The contract
under test: every case either decodes to a 2-D uint8 array or raises ImageError, quickly.

Case `i` of seed `s` is always the same bytes, so a failure is reproduced by its numbers.

    python -m tests.edge.fuzz --cases 20000 --seed 1 --save-dir tests/edge/fuzz_cases

(`make fuzz`) runs a campaign and saves one input per distinct failure (exception type and
the frame that raised it) for tests/edge/test_fuzz.py to replay forever after.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.imageio import ImageError, load_grayscale

FUZZ_CASES_DIR = Path(__file__).parent / "fuzz_cases"
SLOW_SECONDS = 5.0  # a case slower than this is a failure (a radiograph decodes in ms here)
DICOM_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian


@dataclass(frozen=True)
class Case:
    index: int
    sample: str  # the name of the sample it was mutated from, with the sample's suffix
    mutations: tuple[str, ...]  # what was done, for the report
    data: bytes

    @property
    def suffix(self) -> str:
        return Path(self.sample).suffix


@dataclass(frozen=True)
class Failure:
    case: Case
    kind: str  # "exception", "bad_output" or "slow"
    signature: str  # exception type and the frame that raised it: one per distinct bug
    detail: str
    seconds: float


def make_samples(size: int = 24) -> dict[str, bytes]:
    """name (with suffix) -> bytes of a small valid image in each format the decoder reads."""
    yy, xx = np.mgrid[0:size, 0:size]
    gray = ((xx * 7 + yy * 3) % 256).astype(np.uint8)
    samples = {
        "gray.png": _pillow_bytes(Image.fromarray(gray), "PNG"),
        "gray.jpg": _pillow_bytes(Image.fromarray(gray), "JPEG", quality=90),
        "gray16.png": _pillow_bytes(Image.fromarray(gray.astype(np.uint16) * 16), "PNG"),
        "gray.tif": _pillow_bytes(Image.fromarray(gray), "TIFF"),
    }
    samples.update(make_dicom_samples(size))
    return samples


def make_dicom_samples(size: int = 24) -> dict[str, bytes]:
    """Explicit and implicit VR, MONOCHROME1, windowed (multi-valued too), rescaled signed."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    pixels = np.linspace(0, 4095, size * size).reshape(size, size)
    return {
        "explicit.dcm": dicom_bytes(pixels, ExplicitVRLittleEndian),
        "implicit.dcm": dicom_bytes(pixels, ImplicitVRLittleEndian),
        "mono1.dcm": dicom_bytes(pixels, ExplicitVRLittleEndian, photometric="MONOCHROME1"),
        "windowed.dcm": dicom_bytes(
            pixels, ExplicitVRLittleEndian, window=([2048, 1500], [1024, 2000])
        ),
        "rescaled.dcm": dicom_bytes(
            pixels - 2048, ImplicitVRLittleEndian, signed=True, rescale=(0.5, -100)
        ),
    }


def generate_cases(seed: int, count: int, samples: dict[str, bytes] | None = None):
    """Yields `count` mutated cases; the same seed always yields the same cases."""
    samples = samples or make_samples()
    names = sorted(samples)
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        name = names[index % len(names)]
        data, mutations = mutate(samples[name], rng, dicom=name.endswith(".dcm"))
        yield Case(index=index, sample=name, mutations=tuple(mutations), data=data)


def mutate(data: bytes, rng: np.random.Generator, *, dicom: bool) -> tuple[bytes, list[str]]:
    """1-4 random mutations; for DICOM, half the cases keep them inside the header."""
    buffer = bytearray(data)
    # The header ends where the pixel data element starts (found once, before mutating).
    header_end = data.find(DICOM_PIXEL_DATA_TAG) if dicom else -1
    header_only = dicom and header_end > 132 and rng.random() < 0.5
    mutations = []
    for _ in range(int(rng.integers(1, 5))):
        # After the 128-byte preamble and "DICM", so the file still sniffs as DICOM.
        low, high = (132, header_end + 12) if header_only else (0, len(buffer))
        high = max(min(high, len(buffer)), low + 1)
        position = int(rng.integers(low, high))
        op = rng.choice(_OPS_HEADER if header_only else _OPS)
        mutations.append(_apply(op, buffer, position, rng))
    return bytes(buffer), mutations


_OPS = ("flip", "interesting", "delete", "insert", "duplicate", "truncate")
# In a DICOM header the damage that matters is a value of the wrong kind: digits become
# letters, a VR code becomes another, a length field lies.
_OPS_HEADER = ("flip", "interesting", "ascii", "vr", "delete", "insert")
_INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x2E, 0x5C, 0x20)
_VRS = (b"AE", b"CS", b"DS", b"IS", b"OB", b"OW", b"SQ", b"UN", b"US", b"UL", b"SS", b"FD",
        b"LO", b"PN", b"UT", b"XX")


def _apply(op: str, buffer: bytearray, position: int, rng: np.random.Generator) -> str:
    position = min(position, max(len(buffer) - 1, 0))
    if op == "flip" and buffer:
        buffer[position] ^= 1 << int(rng.integers(0, 8))
    elif op == "interesting" and buffer:
        buffer[position] = int(rng.choice(_INTERESTING))
    elif op == "ascii":
        text = rng.choice([b"-", b"\\", b".", b"abc", b"1e9", b"NaN", b"0", b"99999"])
        buffer[position : position + len(text)] = text
    elif op == "vr":
        buffer[position : position + 2] = rng.choice(_VRS)
    elif op == "delete":
        del buffer[position : position + int(rng.integers(1, 17))]
    elif op == "insert":
        buffer[position:position] = rng.bytes(int(rng.integers(1, 17)))
    elif op == "duplicate":
        length = int(rng.integers(1, 65))
        buffer[position:position] = buffer[position : position + length]
    elif op == "truncate":
        del buffer[position:]
    return f"{op}@{position}"


def run_case(case: Case, workdir: Path) -> tuple[Failure | None, float]:
    """Decodes the case from a file named like its sample (the suffix steers DICOM sniffing)."""
    path = workdir / f"case{case.suffix}"
    path.write_bytes(case.data)
    started = time.perf_counter()
    failure_kind, signature, detail = None, "", ""
    try:
        gray = load_grayscale(path)
    except ImageError:
        gray = None
    except _Timeout:
        failure_kind, signature, detail = "slow", "timeout", "interrupted by the alarm"
    except Exception as err:  # any other type is the bug we are hunting
        failure_kind = "exception"
        signature = _signature(err)
        detail = "".join(traceback.format_exception(err)[-6:])
    seconds = time.perf_counter() - started
    if failure_kind is None and gray is not None and (gray.dtype != np.uint8 or gray.ndim != 2):
        failure_kind, signature = "bad_output", f"bad_output {gray.dtype} {gray.ndim}-D"
        detail = f"got {gray.dtype} {gray.shape}"
    if failure_kind is None and seconds > SLOW_SECONDS:
        failure_kind, signature, detail = "slow", "slow", f"{seconds:.1f} s"
    if failure_kind is None:
        return None, seconds
    return Failure(case, failure_kind, signature, detail, seconds), seconds


def save_case(case: Case, directory: Path) -> Path:
    """Saves the input under its content hash, with its sample's suffix; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(case.data).hexdigest()[:16]
    path = directory / f"{Path(case.sample).stem}-{digest}{case.suffix}"
    path.write_bytes(case.data)
    return path


def saved_cases(directory: Path = FUZZ_CASES_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*") if p.is_file() and not p.name.startswith("."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--save-dir", type=Path, default=FUZZ_CASES_DIR)
    parser.add_argument("--alarm", type=float, default=20.0,
                        help="interrupt a case after this many seconds (a hang is a failure); "
                             "0: no alarm")
    args = parser.parse_args(argv)

    if args.alarm:
        signal.signal(signal.SIGALRM, _raise_timeout)
    warnings.simplefilter("ignore")  # hostile files make the libraries warn on every case
    failures: dict[str, Failure] = {}
    slowest = 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for case in generate_cases(args.seed, args.cases):
            if args.alarm:
                signal.setitimer(signal.ITIMER_REAL, args.alarm)
            try:
                failure, seconds = run_case(case, Path(workdir))
            finally:
                if args.alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, seconds)
            if failure and failure.signature not in failures:
                failures[failure.signature] = failure
                saved = save_case(case, args.save_dir)
                print(f"case {case.index} ({case.sample}: {' '.join(case.mutations)}): "
                      f"{failure.kind} {failure.signature} -> {saved}\n{failure.detail}",
                      file=sys.stderr)
            if (case.index + 1) % 1000 == 0:
                print(f"{case.index + 1}/{args.cases} cases, {len(failures)} distinct failures",
                      file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(f"fuzz: seed {args.seed}, {args.cases} cases in {elapsed:.0f} s, slowest case "
          f"{slowest * 1000:.0f} ms, {len(failures)} distinct failures"
          + (f" saved under {args.save_dir}" if failures else ""))
    return 1 if failures else 0


class _Timeout(Exception):
    pass


def _raise_timeout(signum, frame):
    raise _Timeout()


def _signature(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "?"
    return f"{type(err).__name__} at {where}"


def _pillow_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def dicom_bytes(pixels, transfer_syntax=None, *, photometric="MONOCHROME2", window=None,
                rescale=None, signed=False, bits=12) -> bytes:
    """A one-frame CR DICOM of `pixels` (16 bits allocated, `bits` stored); deterministic."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    # Fixed UIDs: the same seed must give the same bytes in every run.
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[photometric, str(window)])
    meta.TransferSyntaxUID = transfer_syntax or pydicom.uid.ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CR"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits, bits - 1
    dataset.PixelRepresentation = 1 if signed else 0
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    if rescale is not None:
        dataset.RescaleSlope, dataset.RescaleIntercept = rescale
    dtype = np.int16 if signed else np.uint16
    dataset.PixelData = np.rint(pixels).astype(dtype).tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
