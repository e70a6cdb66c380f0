"""Does the attention point at the finding? The pointing game (Zhang et al. 2016, "Top-down
Neural Attention by Excitation Backprop"), on the demo phantoms' ground-truth finding masks.

For each test image with a finding, the attention map's arg-max cell is a hit when that cell
holds any pixel of the finding mask. Chance is what a cell picked uniformly at random scores:
the share of the map's cells that hold a finding pixel (on a coarse map larger than the
finding's own area share, which is reported beside it). Images without a finding (the phantoms'
Normal class: its dense ribs are anatomy) cannot be scored and are counted apart.

Only the phantoms' masks mark findings: the Kaggle database's own `masks/` folders outline the
lungs, so the report scores attention only on synthetic data. The masks are found from each
example's source path: `<data root>/<Class>/masks/<file name>` beside `<Class>/images/`.
"""

import dataclasses
import os
import tempfile

import numpy as np
from PIL import Image

from components.lib import demo_data, storage
from edge import spec
from trainer.split_reader import read_split


@dataclasses.dataclass
class TestCases:
    """A split's model inputs, labels and finding masks (None where no mask file exists)."""

    images: np.ndarray  # float32 [N, size, size, 1]
    labels: np.ndarray  # int64 [N]
    masks: list  # bool [size, size] or None, per image


@dataclasses.dataclass
class PointingScore:
    hits: int
    scored: int  # images with a finding
    without_finding: int  # images with an empty or missing mask: not scored
    chance: float  # mean share of the map's cells that hold a finding pixel
    finding_area: float  # mean share of the image the finding covers
    grid: tuple[int, int]

    @property
    def score(self) -> float:
        return self.hits / self.scored if self.scored else float("nan")

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "score": self.score}


def read_test_cases(examples_uri: str, split: str, image_size: int, data_root: str,
                    limit: int | None = None) -> TestCases:
    """Decodes a split (the one split reader: edge decoder and preprocessing) with each image's
    finding mask."""
    cases = read_split(examples_uri, split, image_size, limit)
    masks = [read_finding_mask(os.path.join(data_root, source), image_size) if source else None
             for source in cases.source_paths]
    return TestCases(cases.images, cases.labels, masks)


def load_signature(serving_model_dir: str):
    """The SavedModel's tensor signature (what the report and the benchmark score)."""
    import tensorflow as tf

    return tf.saved_model.load(serving_model_dir).signatures[spec.TENSOR_SIGNATURE]


def signature_outputs(signature, images: np.ndarray, batch_size: int = 64) -> dict:
    """The signature on `images`: probabilities and any attention maps, as numpy arrays."""
    import tensorflow as tf

    keys = [spec.PROBABILITIES_KEY] + attention_keys(signature)
    outputs = {key: [] for key in keys}
    for start in range(0, len(images), batch_size):
        batch = signature(**{spec.IMAGE_TENSOR_KEY: tf.constant(images[start:start + batch_size])})
        for key in keys:
            outputs[key].append(batch[key].numpy())
    return {key: np.concatenate(parts) for key, parts in outputs.items()}


def runner_attention_maps(model_file: str, images: np.ndarray, keys: list[str]) -> dict:
    """{key: [N, h, w, 1]}: the attention maps of a .tflite file on the edge runner, one image
    at a time as on the device (the shipped variant's maps, which int8 can move)."""
    from edge.runtime import ModelRunner

    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, os.path.basename(model_file))
        with open(local, "wb") as handle:
            handle.write(storage.read_bytes(model_file))
        runner = ModelRunner(local, threads=1)
        missing = [key for key in keys if key not in runner.outputs]
        if missing:
            raise ValueError(f"{model_file} has no attention outputs {missing}")
        results = [runner.run(image) for image in images]
    return {key: np.stack([np.asarray(r[key]).reshape(np.asarray(r[key]).shape[-3:])
                           for r in results]) for key in keys}


def attention_keys(signature) -> list[str]:
    """The attention-map outputs of a tensor signature, sorted (none for the baseline)."""
    return sorted(key for key in signature.structured_outputs
                  if key.startswith(spec.ATTENTION_KEY_PREFIX))


def signature_input_size(signature) -> int:
    return int(signature.structured_input_signature[1][spec.IMAGE_TENSOR_KEY].shape[1])


def read_finding_mask(image_path: str, size: int) -> np.ndarray | None:
    """The image's finding mask resized to the model input (nearest), or None if absent."""
    mask_path = demo_data.finding_mask_path(image_path)
    if not os.path.isfile(mask_path):
        return None
    with Image.open(mask_path) as image:
        mask = image.convert("L").resize((size, size), Image.Resampling.NEAREST)
        return np.asarray(mask) > 127


def pointing_game(maps: np.ndarray, masks: list) -> PointingScore:
    """maps: [N, h, w] (or [N, h, w, 1]) attention; masks: bool [S, S] or None per image."""
    grid, peaks = peaks_and_findings(maps, masks)
    hits = scored = without = 0
    chance, area = [], []
    for found, mask in zip(peaks, masks, strict=True):
        if found is None:
            without += 1
            continue
        (row, col), cells = found
        hits += bool(cells[row, col])
        scored += 1
        chance.append(cells.mean())
        area.append(mask.mean())
    return PointingScore(hits, scored, without,
                         float(np.mean(chance)) if chance else float("nan"),
                         float(np.mean(area)) if area else float("nan"), grid)


def peaks_and_findings(maps: np.ndarray, masks: list) -> tuple[tuple[int, int], list]:
    """(the maps' grid, per image: ((row, col) of the map's peak cell, bool [h, w] finding
    cells), or None for an image with an empty or missing mask)."""
    maps = np.asarray(maps)
    if maps.ndim == 4:
        maps = maps[..., 0]
    grid = (int(maps.shape[1]), int(maps.shape[2]))
    peaks = [None if mask is None or not mask.any() else
             (np.unravel_index(int(np.argmax(attention)), grid), finding_cells(mask, grid))
             for attention, mask in zip(maps, masks, strict=True)]
    return grid, peaks


def finding_cells(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """bool [h, w]: which cells of an h×w map over the image hold a finding pixel."""
    height, width = mask.shape
    rows = np.arange(height) * grid[0] // height
    cols = np.arange(width) * grid[1] // width
    cells = np.zeros(grid, dtype=bool)
    found_rows, found_cols = np.nonzero(mask)
    cells[rows[found_rows], cols[found_cols]] = True
    return cells
