"""The report's attention section: the pointing game table and the heat-map overlays, drawn
from what report.attention.measure_attention measured."""

import numpy as np

from components.report.attention import AttentionFindings


def attention_section(page, findings: AttentionFindings | None) -> None:
    if findings is None:
        return
    page.heading("Attention overlays (test images)")
    if findings.scored:
        if findings.shipped_note:
            page.paragraph(findings.shipped_note)
        _pointing_game_table(page, findings)
    else:
        page.paragraph("Pointing game not scored: finding masks exist only for the synthetic "
                       "phantoms (a real database's masks/ folders outline the lungs), found "
                       "under the data root the ingestion summary names.")
    _attention_overlays(page, findings)


def _pointing_game_table(page, findings: AttentionFindings) -> None:
    shipped = findings.shipped_pointing
    rows = []
    for key in findings.keys:
        score = findings.pointing[key]
        row = [key, f"{score['grid'][0]}×{score['grid'][1]}", f"{score['score']:.3f}",
               f"{score['hits']}/{score['scored']}"]
        if shipped:
            on_device = shipped[key]
            row.append(f"{on_device['score']:.3f} ({on_device['hits']}/{on_device['scored']})")
        rows.append(row + [f"{score['chance']:.3f}", f"{score['finding_area']:.3f}",
                           score["without_finding"]])
    shipped_column = ([f"pointing game, shipped {findings.shipped_variant} TFLite"] if shipped
                      else [])
    page.table(["map", "cells", "pointing game (SavedModel)", "hits", *shipped_column,
                "chance (random cell)", "finding area", "not scored (no finding)"], rows)
    page.paragraph(
        "Pointing game: the share of test images with a finding whose attention peak (the "
        "map's arg-max cell) holds a pixel of the phantom's ground-truth finding mask. Chance "
        "is the score of a cell picked at random (the share of cells holding a finding pixel); "
        "the finding area is the share of the image it covers. Images without a finding — the "
        "Normal phantoms, whose dense ribs are anatomy — cannot be scored.")


def _attention_overlays(page, findings: AttentionFindings) -> None:
    import matplotlib.pyplot as plt

    keys, overlays, size = findings.keys, findings.overlays, findings.image_size
    figure, axes = plt.subplots(len(keys), len(overlays), squeeze=False,
                                figsize=(2.6 * len(overlays), 3.2 * len(keys)))
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    for row, key in enumerate(keys):
        for col, overlay in enumerate(overlays):
            axis = axes[row][col]
            attention = overlay.maps[key]
            axis.imshow(overlay.image, cmap="gray", vmin=0, vmax=255, extent=extent)
            # Each map spans its own range: a sigmoid gate near 1 everywhere still shows where
            # it is highest (the title gives the range, so a flat map reads as flat).
            low, high = float(attention.min()), float(attention.max())
            axis.imshow(attention, cmap="jet", alpha=0.5, vmin=low, vmax=max(high, low + 1e-6),
                        interpolation="bilinear", extent=extent)
            mask = overlay.mask
            if mask is not None and mask.any():
                axis.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.2)
            peak_row, peak_col = np.unravel_index(int(attention.argmax()), attention.shape)
            cell = size / attention.shape[0], size / attention.shape[1]
            axis.add_patch(plt.Rectangle((peak_col * cell[1] - 0.5, peak_row * cell[0] - 0.5),
                                         cell[1], cell[0], fill=False, edgecolor="magenta",
                                         linewidth=1.5))
            axis.set_title(f"{key} ({attention.shape[0]}×{attention.shape[1]}, "
                           f"{low:.2f}–{high:.2f})\n"
                           f"true {overlay.true_class}\npred {overlay.predicted_class}",
                           fontsize=7)
            axis.axis("off")
    page.figure(figure, "attention_overlays.png",
                "Attention as a colour heat map (blue: the map's lowest value, red: its "
                "highest; the range is in each title) over the model input; white outline: the "
                "ground-truth finding; magenta box: the map's peak cell")
