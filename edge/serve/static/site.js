// cxr-edge serve: the Site page (GET /api/site/performance, POST /api/site/calibration).
// Uses app.js's el(), api() and the PAGES table; everything shown goes in as textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function estimateText(estimate) {
  if (!estimate || estimate.value === null) return "-";
  const [lo, hi] = estimate.ci;
  return `${(100 * estimate.value).toFixed(1)}% (${(100 * lo).toFixed(1)}-${(100 * hi).toFixed(1)}, n=${estimate.n})`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: String(c) })))));
}

function drawRoc(svg, points) {
  svg.replaceChildren();
  const box = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: 10, y: 10, width: 200, height: 200, fill: "#fff", stroke: "#8aa0ba" })) box.setAttribute(k, v);
  const chance = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: 10, y1: 210, x2: 210, y2: 10, stroke: "#c5ced9", "stroke-dasharray": "4 3" })) chance.setAttribute(k, v);
  svg.append(box, chance);
  if (!points.length) return;
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.map((p) => `${10 + 200 * p.fpr},${210 - 200 * p.tpr}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f5fa8");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
}

function showStatus(data) {
  const banner = document.getElementById("calibration-status");
  const facts = document.getElementById("calibration-facts");
  const c = data.calibration;
  banner.className = c ? "banner notice" : "banner error";
  banner.textContent = c
    ? `Calibrated for model ${data.model.version}: screen positive when the ${c.score} score is at least ${c.threshold.toFixed(4)}.`
    : `Not calibrated for this model version (${data.model.version}): ${data.message}`;
  facts.replaceChildren();
  if (!c) return;
  const rows = [["Target", JSON.stringify(c.target)], ["Confirmed cases", `${c.n_positive} positive, ${c.n_negative} negative`],
    ["Sensitivity", estimateText(c.estimates.sensitivity)], ["Specificity", estimateText(c.estimates.specificity)],
    ["Applied by", `${c.created_by} at ${c.created_at}`], ["Calibration id", c.id]];
  for (const [k, v] of rows) facts.append(el("dt", { text: k }), el("dd", { text: v }));
}

function showPerformance(data) {
  showStatus(data);
  document.getElementById("agreement").textContent =
    `${data.confirmed} confirmed cases (${data.not_assessable} not assessable; ${data.confirmed_other_models} from other model versions, not counted). ` +
    `Cohen's kappa ${data.kappa === null ? "-" : data.kappa.toFixed(3)}.`;
  fill(document.querySelector("#per-class tbody"), data.classes.map((name) => {
    const m = data.per_class[name];
    return [name, estimateText(m.sensitivity), estimateText(m.specificity), estimateText(m.ppv), estimateText(m.npv)];
  }));
  const confusion = document.getElementById("confusion");
  confusion.tHead.replaceChildren(el("tr", {}, el("th", { text: "" }), ...data.classes.map((n) => el("th", { text: n }))));
  fill(confusion.tBodies[0], data.confusion.matrix.map((row, i) => [data.classes[i], ...row]));
  const s = data.screening;
  const select = document.getElementById("score");
  if (!select.options.length) {
    for (const name of ["abnormal", ...data.classes]) select.append(el("option", { value: name, text: name === "abnormal" ? "abnormal (1 - P(normal))" : name }));
  }
  select.value = s.score;
  document.getElementById("auc").textContent = s.auc
    ? `ROC AUC ${s.auc.value.toFixed(3)}` + (s.auc.ci ? ` (95% ${s.auc.ci[0].toFixed(3)}-${s.auc.ci[1].toFixed(3)})` : "") + `, ${s.n_positive} positive and ${s.n_negative} negative.`
    : `No ROC yet: it needs confirmed positive and negative cases (${s.n_positive} and ${s.n_negative} so far).`;
  drawRoc(document.getElementById("roc"), s.roc);
  fill(document.querySelector("#thresholds tbody"), s.table.map((r) => [r.threshold.toFixed(4), r.tp, r.fp, r.tn, r.fn,
    estimateText(r.sensitivity), estimateText(r.specificity), estimateText(r.ppv), estimateText(r.npv), r.referred,
    r.cost_per_true_case === undefined || r.cost_per_true_case === null ? "-" : r.cost_per_true_case]));
  fill(document.querySelector("#weekly tbody"), data.weekly.map((w) => [w.week, w.results, percent(w.referred_share),
    percent(w.ood_share), w.positive_share === null ? "-" : percent(w.positive_share)]));
}

async function loadPerformance() {
  const score = document.getElementById("score").value;
  const cost = document.getElementById("cost").value;
  const query = new URLSearchParams();
  if (score) query.set("score", score);
  if (cost) query.set("cost_per_test", cost);
  const response = await api(`/api/site/performance?${query}`);
  const data = await response.json();
  if (response.status !== 200) throw new Error(data.detail || data.error);
  showPerformance(data);
}

async function propose(dryRun) {
  const target = { [document.getElementById("target-kind").value]: Number(document.getElementById("target-value").value) };
  const body = { score: document.getElementById("score").value || "abnormal", target, dry_run: dryRun };
  const response = await api("/api/site/calibration", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  const box = document.getElementById("proposal");
  const apply = document.getElementById("apply");
  if (response.status !== 200) {
    box.replaceChildren(el("p", { class: "banner error", text: data.detail || data.error }));
    apply.disabled = true;
    return;
  }
  const c = data.calibration;
  const p = data.preview;
  box.replaceChildren(
    el("p", { class: data.applied ? "banner notice" : "", text: data.applied
      ? `Applied: threshold ${c.threshold.toFixed(4)} is in force from now on.`
      : `Proposed threshold ${c.threshold.toFixed(4)}: sensitivity ${estimateText(c.estimates.sensitivity)}, specificity ${estimateText(c.estimates.specificity)}, referred ${percent(c.estimates.referred_share)}.` }),
    el("p", { class: "meta", text: `On the ${p.cases} confirmed cases, against ${p.against}: ${p.positive_before} → ${p.positive_after} screen positive, ` +
      `${p.to_positive} would become positive and ${p.to_negative} negative; missed positives ${p.missed_before} → ${p.missed_after}.` }));
  apply.disabled = data.applied;
  if (data.applied) await loadPerformance();
}

function sitePage() {
  loadPerformance().catch((err) => {
    document.getElementById("calibration-status").textContent = `Could not load the site's numbers: ${err.message}`;
  });
  document.getElementById("score-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadPerformance().catch(() => {});
  });
  document.getElementById("calibrate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    propose(true).catch(() => {});
  });
  document.getElementById("apply").addEventListener("click", () => propose(false).catch(() => {}));
}

PAGES.site = sitePage;
