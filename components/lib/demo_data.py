"""Synthetic chest X-ray phantoms in the Kaggle COVID-19 Radiography layout (SYNTHETIC DATA).

No real patient images can be downloaded here, so the demo trains on generated phantoms: a
thorax with lungs, ribs, clavicles, spine, heart shadow and diaphragm, plus three or four
localized lesions at random places in the lungs. Every class, Normal included, carries lesions
at positions drawn the same way, each adding the very same densities (re-drawn, rank for rank,
from one soft disk's); only their local shape and texture say the class:

- COVID: ground-glass rings (a thin annulus over a faint haze, the "atoll" sign).
- Lung_Opacity: compact, sharp-edged consolidations crossed by dark air bronchograms.
- Viral Pneumonia: reticular patches (a cross-hatched net of lines).
- Normal: patches where the ribs themselves are denser (overlapping ribs, calcified costal
  cartilage) — anatomy, not a finding.

Normal carries the same densities as the findings (a linear model would otherwise tell it from
the rest), but drawn into the image's own rib bands: the least distinctive of the four patterns,
so the model has to recognise each finding rather than name one finding's class from the
others' absence (with granuloma dots for Normal, one finding class was read that way and the
gates parked their weight anywhere on its images: docs/decisions/phantoms-v3.md).

So a linear model cannot read the class: averaged over the random positions every class adds
the same density to every pixel, and each image's pixel values are then re-drawn, rank for
rank, from the histogram of the same thorax without its lesions, so the intensity histogram is
class-independent too. Brightness, contrast (gamma), patient position, size and tilt are
jittered the same way for every class. tests/components/test_demo_data.py measures linear
probes (logistic regression on 8/16/32 px pixels and on the histogram).

`generate` also writes each image's ground-truth finding mask (255 inside a finding, 0
elsewhere; all zero for Normal, whose dense ribs are no finding) under
`<Class>/masks/<Class>-<n>.png`, which ingestion ignores, so attention maps can be scored.

With `site`, every image then goes through a second clinic's simulated scanner, drawn from
the site's name (components/lib/site_shift.py; site-profile.json beside the class folders
says what).

Each image gets its own numpy Generator seeded from (seed, class name, index), so the
bytes of `COVID-7.png` do not depend on how many images of other classes were asked for.
Numpy and Pillow only: importing this module never imports TensorFlow.
"""

import argparse
import os
import zlib

import numpy as np
from PIL import Image

from components.lib import site_shift
from edge import spec

DEFAULT_PER_CLASS = 100
DEFAULT_SEED = 0
# Changes whenever the same arguments draw different images (caches of generated sets key on it).
# 2: localized lesions in every class, finding masks; 3: dense ribs for Normal, air
# bronchograms in Lung_Opacity (docs/decisions/phantoms-v3.md).
GENERATOR_VERSION = 3
IMAGES_FOLDER = "images"
MASKS_FOLDER = "masks"  # components/image_example_gen/ingest.py ignores this folder

# Which lesion each known class name gets.
_LESIONS = {
    "COVID": "ring",
    "Lung_Opacity": "bronchogram",
    "Normal": "dense_ribs",
    "Viral Pneumonia": "reticular",
}


def generate(out_dir, per_class=DEFAULT_PER_CLASS, size=spec.DEMO_IMAGE_SIZE,
             seed=DEFAULT_SEED, class_names=spec.CLASS_NAMES, max_size=None, site=None):
    """Writes `per_class` phantoms per class under out_dir (images/ and masks/ per class);
    returns {class name: [image paths]}. With `max_size`, each phantom is drawn at its own
    side between `size` and `max_size` (log-uniform, `drawn_size`): a model trained on them
    learns the class, not one pixel grid. With `site` (a name or a site_shift.SiteProfile),
    each image goes through that site's scanner shift (masks unchanged) and the profile is
    written to out_dir/site-profile.json."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if size < 32:
        raise ValueError(f"size must be >= 32 px, got {size}")
    if max_size is not None and max_size < size:
        raise ValueError(f"max_size ({max_size}) must be >= size ({size})")
    unknown = [name for name in class_names if name not in _LESIONS]
    if unknown:
        raise ValueError(f"no phantom finding defined for classes {unknown}; "
                         f"known: {sorted(_LESIONS)}")
    profile = site_shift.profile_for(site) if isinstance(site, str) else site
    written = {}
    for name in class_names:
        image_dir = os.path.join(out_dir, name, IMAGES_FOLDER)
        mask_dir = os.path.join(out_dir, name, MASKS_FOLDER)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        written[name] = []
        for index in range(1, per_class + 1):
            side = size if max_size is None else drawn_size(name, index, size, max_size, seed)
            pixels, mask = render_case(name, index, size=side, seed=seed)
            if profile is not None:  # the site's severities are on the --size grid
                pixels = profile.apply(pixels, size, name, index, seed)
            file_name = f"{name}-{index}.png"
            path = os.path.join(image_dir, file_name)
            _write_png(pixels, path)
            _write_png(np.where(mask, 255, 0).astype(np.uint8),
                       os.path.join(mask_dir, file_name))
            written[name].append(path)
    if profile is not None:
        site_shift.write_profile(profile, out_dir, generated={
            "per_class": per_class, "size": size, "max_size": max_size, "seed": seed,
            "generator_version": GENERATOR_VERSION, "classes": list(class_names)})
    return written


def drawn_size(class_name, index, size, max_size, seed=DEFAULT_SEED):
    """The side one phantom of a mixed-size set is drawn at: log-uniform in [size, max_size],
    from its own generator (the phantom's own draws do not move)."""
    rng = np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8")), index, 1])
    return int(round(np.exp(rng.uniform(np.log(size), np.log(max_size)))))


def render_phantom(class_name, index, size=spec.DEMO_IMAGE_SIZE, seed=DEFAULT_SEED):
    """Returns one phantom as a uint8 [size, size] array, a pure function of its arguments."""
    return render_case(class_name, index, size=size, seed=seed)[0]


def render_case(class_name, index, size=spec.DEMO_IMAGE_SIZE, seed=DEFAULT_SEED):
    """Returns (uint8 [size, size] image, bool [size, size] finding mask) for one phantom."""
    if class_name not in _LESIONS:
        raise ValueError(f"no phantom finding defined for class {class_name!r}; "
                         f"known: {sorted(_LESIONS)}")
    rng = np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8")), index])
    grid = _Grid(size, rng)
    anatomy, lungs = _anatomy(grid, rng)
    kind = _LESIONS[class_name]
    lesions, mask = _lesions(kind, grid, lungs, rng)
    return _expose(anatomy, anatomy + lesions, rng), mask


def finding_mask_path(image_path):
    """Where generate() wrote the mask of the image at image_path (Kaggle layout)."""
    class_dir = os.path.dirname(os.path.dirname(image_path))  # <Class>/images/<name> → <Class>
    return os.path.join(class_dir, MASKS_FOLDER, os.path.basename(image_path))


def main(argv=None):
    """CLI: `cxr-pipeline demo-data --out DIR [--per-class N] [--size PX] [--seed S]
    [--site NAME]`."""
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
    profile = site_shift.profile_for(args.site) if args.site is not None else None
    written = generate(args.out, per_class=args.per_class, size=args.size, seed=args.seed,
                       max_size=args.max_size, site=profile)
    total = sum(len(paths) for paths in written.values())
    sides = f"{args.size} px" if args.max_size is None else f"{args.size}-{args.max_size} px"
    print(f"wrote {total} SYNTHETIC phantom images ({args.per_class} per class, "
          f"{sides}, seed {args.seed}) and their finding masks to {args.out}")
    if profile is not None:
        print(f"{profile}\nthrough this simulated scanner; its profile is in "
              f"{os.path.join(args.out, site_shift.PROFILE_FILE)}")
    return 0


_CLI_HELP = ("Write deterministic SYNTHETIC chest X-ray phantoms (and finding masks) in the "
             "Kaggle folder layout.")


def _add_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder (class folders go here)")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    parser.add_argument("--size", type=int, default=spec.DEMO_IMAGE_SIZE, help="side in px")
    parser.add_argument("--max-size", type=int,
                        help="draw each phantom at its own side between --size and this")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--site", metavar="NAME",
                        help="pass the phantoms through the scanner shift this site name "
                             "draws (components/lib/site_shift.py); writes site-profile.json")


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
        self._pose = (cos, sin, du, dv)
        self.pixel = 2.0 / size  # one pixel in normalised units
        self.scale = 1.0  # the patient's size, set by _anatomy
        self.ribs = None  # the rib bands [size, size] in [0, 1], set by _anatomy

    def to_pixel(self, u, v):
        """(row, column) of the pixel nearest the patient point (u, v)."""
        cos, sin, du, dv = self._pose
        x, y = cos * u + sin * v + du, -sin * u + cos * v + dv
        column, row = ((np.array([x, y]) + 1.0) / 2.0 * self.size - 0.5).round().astype(int)
        return min(max(row, 0), self.size - 1), min(max(column, 0), self.size - 1)


class _Lung:
    """One lung as a soft mask plus local coordinates (lateral, vertical) in about [-1, 1]."""

    def __init__(self, grid, side, center_u, center_v, half_width, half_height):
        self.side = side  # -1: image left (patient right), +1: image right
        self.center = (center_u, center_v)
        self.half = (half_width, half_height)
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
    grid.scale = scale
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
    grid.ribs = _rib_bands(grid, spacing, phase=rng.uniform(0, 2 * np.pi))
    density += rng.uniform(0.07, 0.11) * grid.ribs * lung_field

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


def _rib_bands(grid, spacing, phase):
    """Curved bands in [0, 1], one per rib, bowed like the posterior ribs."""
    curve = grid.v - 0.35 * (np.abs(grid.u) - 0.35) ** 2
    return np.clip(np.cos(2 * np.pi * curve / spacing + phase) - 0.3, 0, None) / 0.7


def _lesions(kind, grid, lungs, rng):
    """Returns (added density, finding mask): three or four lesions of `kind` in the lungs.

    Count, places, radii and each lesion's total density are drawn the same way for every
    kind, so only the local shape differs between classes.
    """
    added = np.zeros_like(grid.u)
    mask = np.zeros(grid.u.shape, dtype=bool)
    count = int(rng.integers(3, 5))
    centers = []
    for _ in range(count):
        radius = rng.uniform(0.17, 0.22) * grid.scale
        cu, cv = _lesion_center(grid, lungs, centers, radius, rng)
        centers.append((cu, cv, radius))
        density = rng.uniform(0.3, 0.42)
        du, dv = grid.u - cu, grid.v - cv
        pattern = _LESION_PATTERNS[kind](du, dv, radius, grid, rng)
        added += density * _same_values_as_a_disk(pattern, du, dv, radius)
        if kind in _MASK_EXTENT:
            mask |= du ** 2 + dv ** 2 <= (_MASK_EXTENT[kind] * radius) ** 2
    return added, mask


def _same_values_as_a_disk(pattern, du, dv, radius):
    """Re-draws the pattern's values, rank for rank, from a soft disk's of the same radius.

    Every lesion kind then adds the very same set of densities (same area, same total, same
    edge profile) and differs only in where they go: its shape. Without this a solid blob
    raises many pixels a little and a cluster of dots few pixels a lot, and the whole image's rank
    mapping (_expose) would carry that difference into every lung pixel, where a linear model
    reads it.
    """
    disk = _soft_step(1.0 - np.sqrt(du ** 2 + dv ** 2) / (_DISK_EXTENT * radius), 0.1)
    values = np.sort(disk, axis=None)
    out = np.empty(pattern.size)
    out[np.argsort(pattern, axis=None, kind="stable")] = values
    return out.reshape(pattern.shape)


def _lesion_center(grid, lungs, taken, radius, rng):
    """A point well inside a lung (not behind the heart), apart from the lesions so far."""
    for _ in range(200):
        lung = lungs[rng.integers(2)]
        lateral, vertical = rng.uniform(-0.65, 0.65), rng.uniform(-0.65, 0.7)
        cu = lung.center[0] + lateral * lung.half[0] * lung.side
        cv = lung.center[1] + vertical * lung.half[1]
        row, col = grid.to_pixel(cu, cv)
        if lung.mask[row, col] < 0.7:
            continue
        if all((cu - u) ** 2 + (cv - v) ** 2 > (radius + r + 0.05) ** 2 for u, v, r in taken):
            return cu, cv
    return cu, cv


def _ring(du, dv, radius, grid, rng):
    """COVID: a thin ground-glass ring, hollow but for a faint haze (the "atoll" sign)."""
    distance = np.sqrt(du ** 2 + dv ** 2) / radius
    ring = np.exp(-((distance - 0.8) / 0.14) ** 2)
    haze = 0.08 * _soft_step(0.8 - distance, 0.1)
    return ring + haze


def _solid(du, dv, radius, grid, rng):
    """Lung_Opacity: a compact, dense, homogeneous consolidation with a sharp, lobulated edge."""
    angle = np.arctan2(dv, du)
    lobes = 1.0 + 0.12 * np.cos(3 * angle + rng.uniform(0, 2 * np.pi))
    distance = np.sqrt(du ** 2 + dv ** 2) / (_SOLID_EXTENT * radius * lobes)
    return _soft_step(1.0 - distance, 0.08)


def _reticular(du, dv, radius, grid, rng):
    """Viral Pneumonia: a patch of fine cross-hatched lines (a reticular net)."""
    distance = np.sqrt(du ** 2 + dv ** 2) / radius
    patch = _soft_step(1.0 - distance, 0.12)
    period = 0.13  # normalised units: about 4 px at 64 px
    angle = rng.uniform(0, np.pi)
    net = np.zeros_like(du)
    for turn in (0.0, np.pi / 2 + rng.uniform(-0.3, 0.3)):
        phase = (du * np.cos(angle + turn) + dv * np.sin(angle + turn)) / period
        lines = np.clip(np.cos(2 * np.pi * phase + rng.uniform(0, 2 * np.pi)) - 0.3, 0, None)
        net = np.maximum(net, lines / 0.7)
    return net * patch


def _bronchogram(du, dv, radius, grid, rng):
    """Lung_Opacity: the consolidation crossed by dark, branching air-filled bronchi."""
    solid = _solid(du, dv, radius, grid, rng)
    angle = rng.uniform(0, 2 * np.pi)
    width = max(0.025, 0.7 * grid.pixel)
    bronchi = np.zeros_like(du)
    for turn in (0.0, rng.uniform(0.5, 0.9), -rng.uniform(0.5, 0.9)):  # a trunk, two branches
        direction = angle + turn
        along = du * np.cos(direction) + dv * np.sin(direction)
        across = -du * np.sin(direction) + dv * np.cos(direction)
        bronchi = np.maximum(bronchi, np.exp(-(across / width) ** 2) * (along > -0.1 * radius))
    return solid * (1.0 - 0.7 * bronchi)


def _dense_ribs(du, dv, radius, grid, rng):
    """Normal: the image's own rib bands, denser over a patch (overlapping ribs, calcified
    costal cartilage): anatomy, no finding."""
    distance = np.sqrt(du ** 2 + dv ** 2) / radius
    return grid.ribs * _soft_step(1.0 - distance, 0.12)


_SOLID_EXTENT = 0.7  # of the lesion radius: the consolidation is compact and dense
_DISK_EXTENT = 0.7  # every lesion adds the densities of a soft disk this many radii across
_LESION_PATTERNS = {"ring": _ring, "bronchogram": _bronchogram, "reticular": _reticular,
                    "dense_ribs": _dense_ribs}
# How far the finding mask reaches, in lesion radii.
_MASK_EXTENT = {"ring": 1.05, "bronchogram": 1.15 * _SOLID_EXTENT, "reticular": 1.05}


def _expose(anatomy, density, rng):
    """Density → 8-bit image whose histogram is the lesion-free thorax's, class-independent.

    Gamma, noise and the target mean/std are drawn the same way for every class; the lesioned
    image's pixels then take, rank for rank, the values of the same thorax without lesions.
    """
    gamma = rng.uniform(0.8, 1.25)
    noise = rng.uniform(0.015, 0.035) * rng.standard_normal(density.shape)
    target_mean = rng.uniform(95, 145)
    target_std = rng.uniform(40, 60)
    reference = np.clip(anatomy, 0, None) ** gamma + noise
    reference = (reference - reference.mean()) / max(reference.std(), 1e-6)
    values = np.sort(reference * target_std + target_mean, axis=None)
    image = np.clip(density, 0, None) ** gamma + noise
    ranked = np.empty(image.size)
    ranked[np.argsort(image, axis=None, kind="stable")] = values
    ranked = ranked.reshape(image.shape)
    return np.clip(np.rint(ranked), 0, 255).astype(np.uint8)


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
