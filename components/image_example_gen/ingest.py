"""Class-folder tree → decoded records → leakage-free stratified splits (the Beam-free parts).

The executor strings these together in a Beam pipeline; each function here is plain Python
so it can be tested on its own and pickled to Beam workers.

Layouts: the Kaggle COVID-19 Radiography layout `<root>/<Class>/images/*` (the sibling
`masks/` folder is ignored) and a plain `<root>/<Class>/**` tree. Hidden files are skipped.
"""

import hashlib
import io
import logging
import os

import numpy as np
from PIL import Image
from tfx.dsl.io import fileio

from components.lib import storage
from edge import imageio

# Ingest-level quarantine reason on top of edge.imageio.REASONS: the same pixels filed under
# two classes. We cannot tell which label is right, so every copy is quarantined.
CONFLICTING_LABEL = "conflicting_label"
DEFAULT_SPLIT_RATIOS = (("train", 70), ("eval", 15), ("test", 15))
IGNORED_FOLDERS = ("masks",)

log = logging.getLogger(__name__)


def resolve_class_names(input_base, class_names=None):
    """Returns (class names in label order, folders found that are not used).

    Without configured names the class folders found, sorted, are the classes.
    """
    if not fileio.isdir(input_base):
        raise FileNotFoundError(f"input_base {input_base!r} is not a folder")
    folders = sorted(
        name.rstrip("/") for name in fileio.listdir(input_base)
        if fileio.isdir(os.path.join(input_base, name)) and not name.startswith(".")
    )
    if class_names:
        names = list(class_names)
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique, got {names}")
    else:
        names = folders
    if not names:
        raise ValueError(f"no class folders under {input_base!r}")
    ignored = [folder for folder in folders if folder not in names]
    return names, ignored


def list_class_files(input_base, class_names):
    """Returns [(path relative to input_base, label index)], sorted, for every class folder."""
    files = []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(input_base, name)
        if not fileio.isdir(class_dir):
            continue  # a missing class is the validator's finding, not a crash here
        images_dir = os.path.join(class_dir, "images")
        root = images_dir if fileio.isdir(images_dir) else class_dir
        for path in _walk_files(root):
            files.append((storage.relative(path, input_base), label))
    return sorted(files)


def decode_file(input_base, relative_path, label, class_names, max_side=0,
                max_pixels=imageio.DEFAULT_MAX_PIXELS):
    """Decodes one file with the edge decoder.

    Returns ("ok", record) with the 8-bit grayscale PNG (capped to max_side when > 0), or
    ("quarantine", {"path", "reason", "message"}) for a file the decoder rejects or that fails
    in any other way (reason decode_failed; the traceback is logged at DEBUG).
    """
    try:
        path = os.path.join(input_base, relative_path)
        # edge.imageio reads local paths only; a remote file (gs://…) is handed over as bytes
        # (DICOM is then recognised by its DICM preamble, not by a .dcm suffix).
        source = storage.read_bytes(path) if storage.is_remote(path) else path
        gray = imageio.load_grayscale(source, max_pixels=max_pixels)
        height, width = gray.shape
        record = {
            "path": relative_path,
            "label": label,
            "label_name": class_names[label],
            "hash": imageio.content_hash(gray),
            "width": width,
            "height": height,
            "png": encode_png(cap_side(gray, max_side)),
        }
    except imageio.ImageError as err:
        return "quarantine", quarantine_entry(relative_path, err.reason, err.message)
    except Exception as err:  # one file never fails the whole ingestion run
        log.debug("cannot ingest %s", relative_path, exc_info=True)
        return "quarantine", quarantine_entry(relative_path, imageio.DECODE_FAILED,
                                              f"{type(err).__name__}: {err}")
    return "ok", record


def quarantine_entry(path, reason, message):
    return {"path": path, "reason": reason, "message": message}


def split_conflicts(content_hash, records):
    """One hash group → ("clean", records) or ("conflict", quarantine entries).

    A group whose copies sit under two or more classes is a labelling conflict.
    """
    records = sorted(records, key=lambda r: r["path"])
    labels = sorted({r["label_name"] for r in records})
    if len(labels) == 1:
        return "clean", records
    paths = [r["path"] for r in records]
    message = f"identical pixels (sha256 {content_hash[:12]}) filed under {labels}: {paths}"
    return "conflict", [quarantine_entry(p, CONFLICTING_LABEL, message) for p in paths]


def assign_splits(groups, split_ratios=DEFAULT_SPLIT_RATIOS, seed=0):
    """Assigns hash groups of one class to splits; returns {content hash: split name}.

    groups: [(content hash, number of files)]. Groups are visited in a seeded pseudo-random
    order and each goes to the split furthest below its target share of files, so every
    class is split in the configured proportions (stratified), small classes still reach
    every split when they can, and all copies of one image share a split (no leakage).
    """
    names = [name for name, _ in split_ratios]
    weights = np.array([float(weight) for _, weight in split_ratios])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"split ratios must be non-negative and not all zero: {split_ratios}")
    shares = weights / weights.sum()
    ordered = sorted(groups, key=lambda group: seeded_key(seed, group[0]))
    total = sum(count for _, count in ordered)
    assigned = np.zeros(len(names))
    result = {}
    for content_hash, count in ordered:
        deficit = shares * total - assigned
        deficit[shares == 0] = -np.inf
        index = int(np.argmax(deficit))  # ties: the earlier split in the configured order
        result[content_hash] = names[index]
        assigned[index] += count
    return result


def cap_side(gray, max_side):
    """Downscales so the longer side is at most max_side (0: keep), preserving aspect."""
    height, width = gray.shape
    if not max_side or max(height, width) <= max_side:
        return gray
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.LANCZOS))


def encode_png(gray):
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _walk_files(root):
    # os.walk locally: it does not descend into symbolic links to folders (gfile's walk does,
    # and a hostile tree could loop); a remote tree has no links.
    walk = fileio.walk if storage.is_remote(root) else os.walk
    for folder, subfolders, filenames in walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d not in IGNORED_FOLDERS
        )
        for filename in sorted(filenames):
            if not filename.startswith("."):
                yield os.path.join(folder, filename)


def seeded_key(seed, text):
    """A pseudo-random, reproducible sort key for `text` (hex SHA-256 of seed and text)."""
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()
