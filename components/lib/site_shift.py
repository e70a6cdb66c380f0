"""A second clinic's scanner, drawn from its name: the demo phantoms as that site would send them.

A site is a `SiteProfile`: a tone curve (gamma, then a contrast factor about the mean), a
detector blur, a coarser pixel pitch (resampled down and back to the same side), detector
noise and a collimation border, each drawn once from the site's name within mild-to-moderate
ranges (`RANGES`) and applied with `edge.shift`'s battery transforms, so a site is a mixture
of the battery's milder cells. The seed is zlib.crc32 of the name: the same name draws the
same site on every run and machine. Only the noise differs per image (its own generator,
seeded from the site, the class and the index). Numpy and Pillow only.

The images stay SYNTHETIC phantoms; site-profile.json beside them says what the site does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib

import numpy as np

from edge import shift

# Changes whenever the same name draws another site or the same site shifts images otherwise.
SITE_SHIFT_VERSION = 1
PROFILE_FILE = "site-profile.json"


@dataclasses.dataclass(frozen=True)
class Range:
    low: float
    high: float
    unit: str
    cause: str  # what at a clinic produces it
    log: bool = False  # drawn log-uniform (a factor about 1), else uniform


# Bounds sit at or inside the battery's milder severities (edge/shift.py): a clinic would
# still send such images; their combination is what the site measure tests.
RANGES = {
    "gamma": Range(0.8, 1.25, "exponent of the tone curve", "the detector's response or "
                   "look-up table", log=True),
    "contrast": Range(0.8, 1.2, "factor about the image mean", "the window width the site "
                      "exports with", log=True),
    "blur_sigma": Range(0.2, 0.8, "Gaussian sigma in model pixels", "the detector's "
                        "modulation transfer (CR plate, older flat panel, focal spot)"),
    "resolution": Range(0.75, 1.0, "side resampled to, then back, x the image side",
                        "a coarser pixel pitch or a downsampled export"),
    "noise_sigma": Range(1.0, 4.0, "Gaussian sigma in grey levels at the model's grid",
                         "the dose and the sensor's quantum and electronic noise"),
    "collimation": Range(0.0, 0.06, "dark border width, fraction of the side",
                         "the collimator's shadow around the exposed field"),
}
# The order the transforms run in, as the physics would: optics, sampling, noise, tone, shadow.
ORDER = ("blur_sigma", "resolution", "noise_sigma", "gamma", "contrast", "collimation")


@dataclasses.dataclass(frozen=True)
class SiteProfile:
    """One site's scanner: the drawn parameters (units in `RANGES`)."""

    name: str
    seed: int
    gamma: float
    contrast: float
    blur_sigma: float
    resolution: float
    noise_sigma: float
    collimation: float

    def parameters(self) -> dict:
        return {key: getattr(self, key) for key in RANGES}

    def apply(self, gray: np.ndarray, model_size: int, class_name: str, index: int,
              seed: int = 0) -> np.ndarray:
        """One decoded uint8 image as this site would deliver it (same side); the noise
        comes from the image's own generator, so an image does not depend on the others."""
        rng = np.random.default_rng([self.seed, zlib.crc32(class_name.encode("utf-8")),
                                     index, seed])
        out = shift.FAMILIES["blur"].apply(gray, self.blur_sigma, model_size, rng)
        out = _resample_down_and_back(out, self.resolution, model_size, rng)
        out = shift.FAMILIES["noise"].apply(out, self.noise_sigma, model_size, rng)
        out = shift.FAMILIES["gamma"].apply(out, self.gamma, model_size, rng)
        out = shift.FAMILIES["contrast"].apply(out, self.contrast, model_size, rng)
        if self.collimation > 0:
            out = shift.FAMILIES["collimation"].apply(out, self.collimation, model_size, rng)
        return out

    def to_json(self) -> dict:
        return {
            "site": self.name,
            "seed": self.seed,
            "site_shift_version": SITE_SHIFT_VERSION,
            "synthetic": True,
            "note": "SYNTHETIC phantoms through a simulated scanner; no patient images",
            "parameters": {key: round(value, 4) for key, value in self.parameters().items()},
            "order": list(ORDER),
            "ranges": {key: {"low": r.low, "high": r.high, "unit": r.unit, "cause": r.cause}
                       for key, r in RANGES.items()},
        }

    def __str__(self) -> str:
        lines = [f"site {self.name!r} (seed {self.seed}, SYNTHETIC scanner shift "
                 f"v{SITE_SHIFT_VERSION}):"]
        for key in ORDER:
            r = RANGES[key]
            lines.append(f"  {key:12s} {getattr(self, key):7.3f}  in [{r.low:g}, {r.high:g}]"
                         f"  {r.unit}")
        return "\n".join(lines)


def site_seed(name: str) -> int:
    """The site's seed: crc32 of its name (stable across runs, machines and Python hashes)."""
    return zlib.crc32(name.encode("utf-8"))


def profile_for(name: str) -> SiteProfile:
    """The scanner the site called `name` has (a pure function of the name)."""
    if not name or not name.strip():
        raise ValueError("a site needs a non-empty name")
    seed = site_seed(name)
    rng = np.random.default_rng([seed, SITE_SHIFT_VERSION])
    drawn = {key: _draw(r, rng) for key, r in RANGES.items()}
    return SiteProfile(name=name, seed=seed, **drawn)


def write_profile(profile: SiteProfile, out_dir: str, generated: dict | None = None) -> str:
    """Writes site-profile.json into out_dir (with how the phantoms were generated).

    Returns its path.
    """
    record = profile.to_json()
    if generated:
        record["generated"] = generated
    path = os.path.join(out_dir, PROFILE_FILE)
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    return path


def _draw(r: Range, rng: np.random.Generator) -> float:
    if r.log:
        return float(math.exp(rng.uniform(math.log(r.low), math.log(r.high))))
    return float(rng.uniform(r.low, r.high))


def _resample_down_and_back(gray, factor, model_size, rng):
    """The image sampled at `factor` of its side (box filter, as a coarser detector would
    average) and resized back to its side (bicubic, as a viewer would)."""
    if factor >= 1.0:
        return gray
    resample = shift.FAMILIES["source_resolution"].apply
    per_model_pixel = max(gray.shape) / model_size
    down = resample(gray, factor * per_model_pixel, model_size, rng)
    return resample(down, per_model_pixel, model_size, rng)
