"""The run report's acquisition-shift section: family x severity -> acceptance and accuracy
among `ok` answers, for the float model and the shipped variant, as a table and a heat map.

Renders variants.json's battery (components/quantizer/shift_battery.py,
components/lib/shift_gate.py); it runs no model.
"""

import html
import math

import numpy as np


def shift_section(page, table: dict) -> None:
    battery = table.get("shift_battery")
    if not battery:
        return
    page.heading("Acquisition shift: what `ok` promises on other scanners' images")
    selected = table.get("selected")
    shipped = next((row for row in table.get("variants", [])
                    if row["variant"] == selected and row.get("shift")), None)
    models = [("float SavedModel", battery["float"])]
    if shipped:
        models.append((f"{selected} (shipped)", shipped["shift"]))
    config = battery["config"]
    floor = battery["float"]["min_ok_accuracy"]
    page.paragraph(
        f"{battery['images']} test images, class-balanced, shifted cell by cell (edge/shift.py) "
        f"and decided as the device decides (the manifest's thresholds). Gate per cell: "
        f"accuracy among ok answers ≥ {floor:.2f}; acceptance ≥ "
        f"{config['min_mild_acceptance']:.2f} in each family's mildest cell and ≥ "
        f"{config['min_resolution_acceptance']:.2f} in every source-resolution cell. "
        f"{battery['seconds']} s.")
    for name, verdict in models:
        page.paragraph(f"<b>{html.escape(name)}:</b> {html.escape(verdict['summary'])}",
                       escape=False)
    causes = {family: spec["cause"] for family, spec in battery["families"].items()}
    header = ["cell", "what produces it"]
    for name, _ in models:
        header += [f"{name}: accepted", f"{name}: right among ok"]
    rows = []
    for index, cell in enumerate(battery["float"]["cells"]):
        row = [cell["cell"], causes.get(cell["family"], "") if cell["mildest"] else ""]
        for _, verdict in models:
            other = verdict["cells"][index]
            row += [f"{other['acceptance']:.3f}", _accuracy(other["accuracy_ok"])]
        rows.append(row)
    page.table(header, rows)
    name, verdict = models[-1]
    page.figure(_heat_map(verdict["cells"], battery["families"]), "shift_battery.png",
                f"{name}: acceptance and accuracy among ok answers, family x severity "
                "(blank: every image referred)")


def _heat_map(cells: list[dict], families: dict):
    import matplotlib.pyplot as plt

    names = list(families)
    width = max(len(spec["severities"]) for spec in families.values())
    grids = {key: np.full((len(names), width), np.nan) for key in ("acceptance", "accuracy_ok")}
    labels = [[""] * width for _ in names]
    for cell in cells:
        row = names.index(cell["family"])
        col = families[cell["family"]]["severities"].index(cell["severity"])
        for key, grid in grids.items():
            grid[row, col] = cell[key]
        labels[row][col] = f"{cell['severity']:g}"
    figure, axes = plt.subplots(1, 2, figsize=(9.5, 0.42 * len(names) + 1.4), sharey=True)
    for axis, (key, title) in zip(axes, (("acceptance", "share answered ok"),
                                         ("accuracy_ok", "accuracy among ok")), strict=True):
        axis.imshow(grids[key], cmap="RdYlGn", vmin=0.5 if key == "accuracy_ok" else 0.0,
                    vmax=1.0, aspect="auto")
        for (row, col), value in np.ndenumerate(grids[key]):
            if labels[row][col]:
                axis.text(col, row, f"{labels[row][col]}\n{_accuracy(value)}", ha="center",
                          va="center", fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.set_xticks(range(width), [f"severity {i + 1}" for i in range(width)], fontsize=7)
        axis.set_yticks(range(len(names)), names, fontsize=8)
    return figure


def _accuracy(value: float) -> str:
    return "referred" if value is None or math.isnan(value) else f"{value:.3f}"
