"""Synthetic chest X-ray phantoms in the Kaggle COVID-19 Radiography layout (SYNTHETIC DATA).

No real patient images can be downloaded here, so the demo trains on generated phantoms:
a thorax with lungs, ribs, clavicles, spine, heart shadow and diaphragm, plus one finding
per class, written as 8-bit grayscale PNGs under `<Class>/images/<Class>-<n>.png`:

- COVID: bilateral, peripheral, lower-zone ground-glass haze (patchy, soft-edged).
- Lung_Opacity: unilateral lobar consolidation (dense, homogeneous, sharp fissure edge).
- Viral Pneumonia: bilateral perihilar interstitial pattern (reticular lines and nodules).
- Normal: clear lungs.

Findings are drawn coarse enough to survive a 64 px model input, and vary in position,
extent and intensity. Every image is then mapped to a mean and standard deviation drawn
from one class-independent distribution, so global brightness or contrast says nothing
about the class: a model has to find the finding.

Each image gets its own numpy Generator seeded from (seed, class name, index), so the
bytes of `COVID-7.png` do not depend on how many images of other classes were asked for.
Numpy and Pillow only: importing this module never imports TensorFlow.
"""

import argparse
import os
import zlib

import numpy as np
from PIL import Image

from edge import spec

DEFAULT_PER_CLASS = 100
DEFAULT_SEED = 0

# Which finding each known class name gets.
_FINDINGS = {
    "COVID": "ground_glass",
    "Lung_Opacity": "consolidation",
    "Normal": "clear",
    "Viral Pneumonia": "interstitial",
}


def generate(out_dir, per_class=DEFAULT_PER_CLASS, size=spec.DEMO_IMAGE_SIZE,
             seed=DEFAULT_SEED, class_names=spec.CLASS_NAMES):
    """Writes `per_class` phantoms per class under out_dir; returns {class name: [paths]}."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if size < 32:
        raise ValueError(f"size must be >= 32 px, got {size}")
    unknown = [name for name in class_names if name not in _FINDINGS]
    if unknown:
        raise ValueError(f"no phantom finding defined for classes {unknown}; "
                         f"known: {sorted(_FINDINGS)}")
    written = {}
    for name in class_names:
        image_dir = os.path.join(out_dir, name, "images")
        os.makedirs(image_dir, exist_ok=True)
        written[name] = []
        for index in range(1, per_class + 1):
            pixels = render_phantom(name, index, size=size, seed=seed)
            path = os.path.join(image_dir, f"{name}-{index}.png")
            _write_png(pixels, path)
            written[name].append(path)
    return written


def render_phantom(class_name, index, size=spec.DEMO_IMAGE_SIZE, seed=DEFAULT_SEED):
    """Returns one phantom as a uint8 [size, size] array, a pure function of its arguments."""
    rng = np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8")), index])
    grid = _Grid(size, rng)
    density, lungs = _anatomy(grid, rng)
    finding = _FINDINGS[class_name]
    if finding == "ground_glass":
        density += _ground_glass(grid, lungs, rng)
    elif finding == "consolidation":
        density += _consolidation(grid, lungs, rng)
    elif finding == "interstitial":
        density += _interstitial(grid, lungs, rng)
    return _expose(density, grid, rng)


def main(argv=None):
    """CLI: `cxr-pipeline demo-data --out DIR [--per-class N] [--size PX] [--seed S]`."""
    parser = argparse.ArgumentParser(prog="cxr-pipeline demo-data", description=_CLI_HELP)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_demo_data_parser(subparsers):
    """Adds the `demo-data` sub-command to an argparse subparsers object."""
    parser = subparsers.add_parser("demo-data", help=_CLI_HELP, description=_CLI_HELP)
    _add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser


def run_from_args(args):
    written = generate(args.out, per_class=args.per_class, size=args.size, seed=args.seed)
    total = sum(len(paths) for paths in written.values())
    print(f"wrote {total} SYNTHETIC phantom images ({args.per_class} per class, "
          f"{args.size} px, seed {args.seed}) to {args.out}")
    return 0


_CLI_HELP = "Write deterministic SYNTHETIC chest X-ray phantoms in the Kaggle folder layout."


def _add_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder (class folders go here)")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    parser.add_argument("--size", type=int, default=spec.DEMO_IMAGE_SIZE, help="side in px")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)


class _Grid:
    """Normalised image coordinates: u left→right, v top→bottom, both in [-1, 1]."""

    def __init__(self, size, rng):
        self.size = size
        axis = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0
        # A small random tilt and shift of the whole patient.
        angle = rng.uniform(-0.08, 0.08)
        du, dv = rng.uniform(-0.07, 0.07, size=2)
        u, v = np.meshgrid(axis, axis)
        cos, sin = np.cos(angle), np.sin(angle)
        self.u = cos * (u - du) - sin * (v - dv)
        self.v = sin * (u - du) + cos * (v - dv)
        self.pixel = 2.0 / size  # one pixel in normalised units


class _Lung:
    """One lung as a soft mask plus local coordinates (lateral, vertical) in about [-1, 1]."""

    def __init__(self, grid, side, center_u, center_v, half_width, half_height):
        self.side = side  # -1: image left (patient right), +1: image right
        self.lateral = (grid.u - center_u) / half_width * side
        self.vertical = (grid.v - center_v) / half_height
        # Wider at the base than at the apex, like a real lung field.
        widen = 1.0 + 0.25 * self.vertical
        radius = np.sqrt((self.lateral / widen) ** 2 + self.vertical ** 2)
        self.mask = _soft_step(1.0 - radius, 0.06)


def _anatomy(grid, rng):
    """Returns the density map of a normal thorax and its two lungs."""
    u, v = grid.u, grid.v
    scale = rng.uniform(0.9, 1.05)
    body = _soft_ellipse(u, v, 0.0, 0.15, 0.88 * scale, 1.15 * scale, 0.05)
    density = 0.15 + 0.55 * body

    lung_v = rng.uniform(-0.12, 0.0)
    lung_h = rng.uniform(0.52, 0.62) * scale
    lungs = [
        _Lung(grid, -1, -0.4 * scale, lung_v, rng.uniform(0.28, 0.32) * scale, lung_h),
        _Lung(grid, +1, 0.4 * scale, lung_v, rng.uniform(0.26, 0.3) * scale,
              lung_h * rng.uniform(0.94, 1.0)),
    ]
    # The heart shadow, to the patient's left, hides the lung behind it.
    heart = _soft_ellipse(u, v, rng.uniform(0.1, 0.18), lung_v + lung_h * rng.uniform(0.55, 0.7),
                          rng.uniform(0.26, 0.34), rng.uniform(0.22, 0.28), 0.08)
    for lung in lungs:
        lung.mask = lung.mask * (1.0 - heart)
    lung_field = np.maximum(lungs[0].mask, lungs[1].mask)
    air_darkness = rng.uniform(0.32, 0.42)
    density -= air_darkness * lung_field

    # Ribs: curved bright bands over the lung fields, spacing and phase vary.
    spacing = rng.uniform(0.15, 0.19)
    phase = rng.uniform(0, 2 * np.pi)
    curve = v - 0.35 * (np.abs(u) - 0.35) ** 2
    ribs = np.clip(np.cos(2 * np.pi * curve / spacing + phase) - 0.3, 0, None) / 0.7
    density += rng.uniform(0.07, 0.11) * ribs * lung_field

    # Clavicles: two oblique bands near the apices.
    clavicle_v = lung_v - lung_h * rng.uniform(0.75, 0.9)
    clavicle = np.exp(-((v - clavicle_v + 0.25 * (np.abs(u) - 0.3)) / 0.04) ** 2)
    density += 0.12 * clavicle * (np.abs(u) < 0.75)

    # Mediastinum and spine down the middle.
    density += 0.12 * _soft_step(0.1 - np.abs(u), 0.03) * body

    # Diaphragm domes below the lungs.
    dome = lung_v + lung_h * 0.98 + 0.3 * u ** 2
    density += 0.15 * _soft_step(v - dome, 0.04) * body

    # Fine lung markings present in every class, so texture alone is not the Viral sign.
    density += 0.03 * _smooth_noise(grid.size, 12, rng) * lung_field
    return density, lungs


def _ground_glass(grid, lungs, rng):
    """COVID: bilateral, peripheral, lower-zone patchy haze."""
    added = np.zeros_like(grid.u)
    for lung in lungs:
        inner = rng.uniform(0.2, 0.45)
        top = rng.uniform(-0.5, 0.0)
        peripheral = _soft_step(lung.lateral - inner, 0.15)
        lower = _soft_step(lung.vertical - top, 0.2)
        patches = _soft_step(_smooth_noise(grid.size, 4, rng) + 0.6, 0.3)
        strength = rng.uniform(0.22, 0.32)
        added += strength * peripheral * lower * patches * lung.mask
    return added


def _consolidation(grid, lungs, rng):
    """Lung_Opacity: one dense lobe with a sharp fissure edge, the rest of that lung clear."""
    lung = lungs[rng.integers(2)]
    fissure = rng.uniform(-0.3, 0.3) + rng.uniform(-0.3, 0.3) * lung.lateral
    if rng.random() < 0.5:
        lobe = _soft_step(lung.vertical - fissure, 0.05)  # lower lobe
    else:
        lobe = _soft_step(fissure - lung.vertical, 0.05)  # upper lobe
    texture = 1.0 + 0.15 * _smooth_noise(grid.size, 6, rng)
    return rng.uniform(0.26, 0.36) * lobe * texture * lung.mask


def _interstitial(grid, lungs, rng):
    """Viral Pneumonia: bilateral perihilar reticulo-nodular pattern."""
    added = np.zeros_like(grid.u)
    cells = int(rng.integers(5, 8))
    for lung in lungs:
        # Perihilar: strongest near the medial, middle part of each lung.
        perihilar = np.exp(-((lung.lateral + 0.6) / 0.9) ** 2 - (lung.vertical / 0.8) ** 2)
        # Reticulation: ridges of smooth noise form a coarse net of lines.
        ridges = 1.0 - np.abs(_smooth_noise(grid.size, cells, rng))
        net = np.clip(ridges - 0.6, 0, None) / 0.4
        nodules = _nodules(grid, lung, rng)
        strength = rng.uniform(0.14, 0.22)
        added += strength * (0.35 * perihilar + net * perihilar + nodules) * lung.mask
    return added


def _nodules(grid, lung, rng):
    count = int(rng.integers(8, 15))
    radius = max(rng.uniform(0.035, 0.05), 0.9 * grid.pixel)
    spots = np.zeros_like(grid.u)
    for _ in range(count):
        # Rejection-free: place in lung-local coordinates, weighted to the hilum.
        lateral = rng.uniform(-0.9, 0.5)
        vertical = rng.uniform(-0.8, 0.8)
        distance = (lung.lateral - lateral) ** 2 + (lung.vertical - vertical) ** 2
        spots = np.maximum(spots, np.exp(-distance / (2 * (radius / 0.27) ** 2)))
    return spots


def _expose(density, grid, rng):
    """Density → 8-bit image with class-independent brightness, contrast and noise."""
    gamma = rng.uniform(0.8, 1.25)
    image = np.clip(density, 0, None) ** gamma
    image = image + rng.uniform(0.015, 0.035) * rng.standard_normal(image.shape)
    # Map to a target mean/std drawn the same way for every class.
    target_mean = rng.uniform(95, 145)
    target_std = rng.uniform(40, 60)
    image = (image - image.mean()) / max(image.std(), 1e-6) * target_std + target_mean
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _soft_step(x, width):
    return 0.5 * (1.0 + np.tanh(x / width))


def _soft_ellipse(u, v, cu, cv, au, av, width):
    radius = np.sqrt(((u - cu) / au) ** 2 + ((v - cv) / av) ** 2)
    return _soft_step(1.0 - radius, width)


def _smooth_noise(size, cells, rng):
    """Value noise in about [-1, 1]: a random cells×cells lattice, smoothly interpolated."""
    lattice = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))
    position = (np.arange(size) + 0.5) / size * cells
    index = np.minimum(position.astype(int), cells - 1)
    frac = position - index
    fade = frac * frac * (3.0 - 2.0 * frac)
    rows = lattice[index] * (1 - fade)[:, None] + lattice[index + 1] * fade[:, None]
    return rows[:, index] * (1 - fade)[None, :] + rows[:, index + 1] * fade[None, :]


def _write_png(pixels, path):
    # Fixed options, no metadata chunks: same pixels → same bytes.
    Image.fromarray(pixels).save(path, format="PNG", optimize=False, compress_level=6)
