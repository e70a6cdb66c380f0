// cxr-edge serve: the pages' behaviour. Plain JS, no libraries, nothing from a CDN.
// Everything shown comes from the JSON API and is put in the page with textContent, never as
// HTML, so a file name or a manifest value can never become markup.
"use strict";

const REASONS = {
  out_of_distribution: "the image is unlike the images the model was trained on",
  low_confidence: "the model is not sure: its top probability is below the referral threshold",
  unstable: "a slight blur or sharpening of the image changes the model's answer",
  unsupported_sop_class: "not a chest radiograph (CR, DX or a chest Secondary Capture): not read",
  unsupported_body_part: "the header names another body part than the chest: not read",
  unsupported_view: "a lateral or other non-frontal view: the model reads PA/AP only",
  unsupported_patient: "the patient is younger than the model is meant for: not read",
  unsupported_presentation: "raw detector data (DX FOR PROCESSING): send the processed image",
};
const UPLOADS_AT_ONCE = 2; // the interpreter is serial; two keep it busy while one uploads

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "class" || key === "href" || key === "src" ||
             key === "alt" || key === "title" || key === "type" || key === "value") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("the access code is needed");
  }
  return response;
}

async function loadModel() {
  const response = await api("/api/model");
  const model = await response.json();
  const banner = document.getElementById("synthetic");
  if (banner) banner.hidden = !model.synthetic_data;
  const notice = document.getElementById("notice");
  if (notice && model.notice) notice.textContent = model.notice;
  const nav = document.querySelector("header nav");
  if (model.access_code_required && nav && !document.getElementById("logout")) {
    nav.append(el("form", { method: "post", action: "/logout", class: "logout" },
      el("button", { id: "logout", type: "submit", class: "link", text: "Log out" })));
  }
  return model;
}

// Who is logged in (GET /api/me); a station without user accounts answers 404: show nothing.
// The role only hides controls it cannot use (CSS on body[data-role]); the server checks it.
async function loadMe() {
  const response = await api("/api/me");
  if (response.status !== 200) return null;
  const me = await response.json();
  document.body.dataset.role = me.role;
  const box = document.getElementById("me");
  if (box) {
    box.textContent = `${me.name} (${me.role})`;
    box.hidden = false;
  }
  return me;
}

function percent(p) {
  return p === null || p === undefined ? "" : (100 * p).toFixed(1) + "%";
}

function randomId() {
  // crypto.randomUUID needs https; getRandomValues works on the clinic's plain-HTTP network.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function statusBadge(status) {
  return el("span", { class: "status " + status, text: status });
}

function probabilityList(result) {
  const list = el("ul", { class: "probs" });
  for (const [name, p] of Object.entries(result.probabilities || {})) {
    const bar = el("span");
    bar.style.width = percent(p);
    list.append(el("li", { class: name === result.predicted_class ? "top" : "",
      "data-class": name }, el("span", { text: name }), el("span", { class: "bar" }, bar),
    el("span", { class: "p", text: percent(p) })));
  }
  return list;
}

function findingText(finding) {
  if (!finding) return "";
  const label = finding.label === "not_assessable" ? "not assessable" : finding.label;
  return `${label} (${finding.source}, ${finding.who})`;
}

async function detail(response) {
  const body = await response.json().catch(() => ({}));
  return body.detail || body.error || `HTTP ${response.status}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------- triage

function triagePage() {
  let model = null;
  const queue = [];
  let running = 0;
  const progress = document.getElementById("progress");
  const results = document.getElementById("results");
  let done = 0;
  let total = 0;

  loadModel().then((m) => {
    model = m;
    const signed = m.signed_by ? `, signed by ${m.signed_by}` : "";
    document.getElementById("model-line").textContent =
      `Model ${m.version} (${m.variant || m.quantization}), classes: ${m.class_names.join(", ")}` +
      signed;
  }).catch((err) => {
    document.getElementById("model-line").textContent = "Could not load the model: " + err;
  });

  function add(files) {
    for (const file of files) {
      const card = el("article", { class: "card result", "data-status": "pending" },
        el("h3", { text: file.name || "photo" }),
        el("p", { class: "verdict" }, statusBadge("pending"), " waiting…"));
      results.prepend(card);
      queue.push({ file, card, id: randomId() });
      total += 1;
    }
    showProgress();
    pump();
  }

  function showProgress() {
    progress.textContent = total ? `${done} of ${total} classified` : "";
  }

  function pump() {
    while (running < UPLOADS_AT_ONCE && queue.length) {
      running += 1;
      const job = queue.shift();
      upload(job).catch((err) => showError(job.card, "upload_failed", String(err)))
        .finally(() => { running -= 1; done += 1; showProgress(); pump(); });
    }
  }

  async function upload(job) {
    const limit = model && model.limits ? model.limits.max_upload_bytes : null;
    if (limit && job.file.size > limit) {
      showError(job.card, "too_large",
        `${(job.file.size / 1048576).toFixed(1)} MB is over this station's ` +
        `${(limit / 1048576).toFixed(0)} MB limit`);
      return;
    }
    for (;;) {
      const form = new FormData();
      form.append("file", job.file, job.file.name || "photo.jpg");
      form.append("upload_id", job.id);
      const response = await api("/api/classify", { method: "POST", body: form });
      if (response.status === 503) { // the queue is full: wait as told, then the same upload_id
        const wait = Number(response.headers.get("Retry-After") || "2");
        await sleep(1000 * wait);
        continue;
      }
      const body = await response.json().catch(() => ({}));
      if ((response.status === 200 || response.status === 422) && body.results) {
        showResult(job.card, body.results[0]);
      } else {
        showError(job.card, body.error || `http_${response.status}`, body.detail || "");
      }
      return;
    }
  }

  function showError(card, reason, detail) {
    card.dataset.status = "error";
    card.replaceChildren(card.querySelector("h3"),
      el("p", { class: "verdict" }, statusBadge("error"), " could not be classified"),
      el("p", { class: "why", text: `${reason}: ${detail}` }));
  }

  function showResult(card, result) {
    card.dataset.status = result.status;
    card.dataset.id = result.id;
    if (result.predicted_class) card.dataset.class = result.predicted_class;
    const parts = [card.querySelector("h3")];
    if (result.status === "error") {
      parts.push(el("p", { class: "verdict" }, statusBadge("error"), " could not be read"),
        el("p", { class: "why", text: `${result.reason}: ${result.error}` }));
    } else {
      const verdict = el("p", { class: "verdict" }, statusBadge(result.status), " ",
        el("strong", { class: "predicted", text: result.predicted_class }),
        ` ${percent(result.probability)}`);
      parts.push(verdict);
      if (result.status === "refer") {
        parts.push(el("p", { class: "why",
          text: "Refer to a clinician: " + (REASONS[result.reason] || result.reason) }));
      }
      parts.push(probabilityList(result));
    }
    const images = Object.entries(result.images || {});
    if (images.length) {
      const [name, url] = images[0];
      const caption = name === "image" ? "The image (this model has no attention map)"
        : "Where the model looked (attention heat map over the image)";
      parts.push(el("figure", {}, el("img", { src: url, alt: caption, class: "heatmap" }),
        el("figcaption", { class: "meta", text: caption })));
    }
    const ms = result.latency_ms === null ? "" : `${Math.round(result.latency_ms)} ms`;
    const inference = result.inference_ms ? ` (model ${result.inference_ms.toFixed(1)} ms)` : "";
    parts.push(el("p", { class: "meta", text:
      `#${result.id} · ${ms}${inference} · model ${result.model_version}` +
      (result.variant ? ` (${result.variant})` : "") }));
    card.replaceChildren(...parts);
  }

  const drop = document.getElementById("drop");
  for (const id of ["files", "camera"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => { add(Array.from(input.files)); input.value = ""; });
  }
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add(Array.from(event.dataTransfer.files));
  });
}

// ------------------------------------------------------------------------------- history

function historyPage() {
  const status = document.getElementById("status");
  const klass = document.getElementById("class");
  const study = document.getElementById("study");
  const body = document.querySelector("#history tbody");
  const count = document.getElementById("count");
  const exportLink = document.getElementById("export");
  loadModel().catch(() => {});

  function query() {
    const params = new URLSearchParams();
    if (status.value) params.set("status", status.value);
    if (klass.value) params.set("class", klass.value);
    if (study.value.trim()) params.set("study", study.value.trim());
    const text = params.toString();
    return text ? "?" + text : "";
  }

  async function refresh() {
    exportLink.href = "/api/history.csv" + query();
    const response = await api("/api/history" + query());
    const data = await response.json();
    const chosen = klass.value;
    klass.replaceChildren(el("option", { value: "", text: "all" }),
      ...data.classes.map((name) => el("option", { value: name, text: name })));
    klass.value = chosen;
    count.textContent = `${data.total} result${data.total === 1 ? "" : "s"}` +
      (data.results.length < data.total ? ` (newest ${data.results.length} shown)` : "");
    body.replaceChildren(...data.results.map(row));
  }

  function row(record) {
    const when = new Date(record.created_at).toLocaleString();
    const remove = el("button", { class: "button small danger needs-admin", type: "button",
      text: "Delete" });
    remove.addEventListener("click", async () => {
      if (remove.dataset.armed !== "yes") { // two taps, no pop-up: works the same on a phone
        remove.dataset.armed = "yes";
        remove.textContent = "Really delete?";
        setTimeout(() => { remove.dataset.armed = ""; remove.textContent = "Delete"; }, 4000);
        return;
      }
      const response = await api(`/api/history/${record.id}`, { method: "DELETE" });
      if (response.status === 204) await refresh();
    });
    const origin = record.source === "dicom"
      ? `DICOM from ${record.calling_ae}; study ${record.study_instance_uid}` : null;
    const file = record.kept_images.includes("image")
      ? el("a", { href: `/api/history/${record.id}/image.png`, text: record.filename, title: origin })
      : el("span", { text: record.filename, title: origin });
    const what = record.status === "error" ? `${record.reason}` : record.predicted_class;
    const why = record.status === "refer" ? ` (${record.reason})` : "";
    return el("tr", { "data-id": record.id, "data-status": record.status },
      el("td", { text: when }), el("td", {}, file),
      el("td", {}, statusBadge(record.status), why), el("td", { text: what || "" }),
      el("td", { text: percent(record.probability) }),
      el("td", { class: "finding", text: findingText(record.finding),
        title: record.finding && record.finding.note ? record.finding.note : null }),
      el("td", { text: `${record.model_version || ""} ${record.variant || ""}` }),
      el("td", {}, remove));
  }

  status.addEventListener("change", refresh);
  klass.addEventListener("change", refresh);
  study.addEventListener("change", refresh);
  document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  refresh();
}

// ------------------------------------------------------------------------------- review

const SOURCE_KEY = "cxr-finding-source"; // remembered for this browser session only

function reviewPage() {
  const list = document.getElementById("worklist");
  const count = document.getElementById("worklist-count");
  const recorded = document.getElementById("recorded");
  const source = document.getElementById("source");
  const denied = document.getElementById("denied");
  let total = 0;
  loadModel().catch(() => {});
  source.value = sessionStorage.getItem(SOURCE_KEY) || "radiologist";
  source.addEventListener("change", () => sessionStorage.setItem(SOURCE_KEY, source.value));
  document.getElementById("review-options").addEventListener("submit", (e) => e.preventDefault());

  function showCount() {
    count.textContent = total
      ? `${total} result${total === 1 ? "" : "s"} without a finding (referred first)`
      : "Every result has a finding.";
  }

  async function refresh() {
    const response = await api("/api/worklist");
    if (response.status === 403) {
      denied.textContent = "Recording findings needs a reviewer: " + await detail(response);
      denied.hidden = false;
      document.getElementById("review-tools").hidden = true;
      return;
    }
    const data = await response.json();
    total = data.total;
    showCount();
    list.replaceChildren(...data.results.map(card));
    await refreshPending();
  }

  function card(result) {
    const note = el("input", { class: "note", type: "text", maxLength: 500,
      placeholder: "Note (optional)", "aria-label": "Note for " + result.filename });
    const message = el("p", { class: "why", role: "status" });
    const buttons = el("div", { class: "finding-buttons" });
    const labels = Object.keys(result.probabilities || {}).concat(["not_assessable"]);
    for (const label of labels) {
      const button = el("button", { type: "button", "data-label": label,
        class: "button small finding" + (label === "not_assessable" ? " secondary" : ""),
        text: label === "not_assessable" ? "Not assessable" : label });
      button.addEventListener("click", () => record(result, label, note.value, box, message));
      buttons.append(button);
    }
    const parts = [el("h3", { text: result.filename }),
      el("p", { class: "verdict" }, statusBadge(result.status), " ",
        el("strong", { class: "predicted", text: result.predicted_class }),
        ` ${percent(result.probability)}`)];
    if (result.status === "refer") {
      parts.push(el("p", { class: "why",
        text: "Referred: " + (REASONS[result.reason] || result.reason) }));
    }
    if ((result.kept_images || []).includes("image")) {
      parts.push(el("img", { src: `/api/history/${result.id}/image.png`,
        alt: "The image " + result.filename, class: "preview" }));
    }
    parts.push(probabilityList(result),
      el("p", { class: "meta", text: `#${result.id} · ${new Date(result.created_at)
        .toLocaleString()} · model ${result.model_version}` }),
      note, el("p", { class: "meta", text: "What does the image show?" }), buttons, message);
    const box = el("article", { class: "card case", "data-id": result.id,
      "data-status": result.status }, ...parts);
    return box;
  }

  async function record(result, label, note, box, message) {
    for (const button of box.querySelectorAll("button")) button.disabled = true;
    const response = await api(`/api/history/${result.id}/finding`, {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ label, source: source.value, note: note || null }) });
    if (response.status !== 200) {
      message.textContent = "Not recorded: " + await detail(response);
      for (const button of box.querySelectorAll("button")) button.disabled = false;
      return;
    }
    const updated = await response.json();
    box.remove();
    total -= 1;
    showCount();
    recorded.textContent = `Recorded ${findingText(updated.finding)} for ${updated.filename} ` +
      `(#${updated.id}).`;
    if (!list.children.length && total > 0) await refresh();
  }

  async function refreshPending() {
    const response = await api("/api/findings/pending");
    if (response.status !== 200) return;
    const body = document.querySelector("#pending tbody");
    const rows = (await response.json()).pending.map((row) => {
      const discard = el("button", { class: "button small danger", type: "button",
        text: "Discard" });
      discard.addEventListener("click", async () => {
        const reply = await api(`/api/findings/pending/${row.id}`, { method: "DELETE" });
        if (reply.status === 204) await refreshPending();
      });
      return el("tr", { "data-id": row.id }, el("td", { class: "file", text: row.file }),
        el("td", { text: row.label }), el("td", { text: row.source }),
        el("td", { text: row.who }), el("td", { text: new Date(row.at).toLocaleString() }),
        el("td", {}, discard));
    });
    body.replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { text: "none", colSpan: 6 }))]));
  }

  const file = document.getElementById("import-file");
  file.addEventListener("change", () => {
    document.getElementById("import-name").textContent = file.files.length ? file.files[0].name : "";
  });
  document.getElementById("import").addEventListener("submit", async (event) => {
    event.preventDefault();
    const report = document.getElementById("import-report");
    if (!file.files.length) {
      report.replaceChildren(el("p", { class: "why", text: "Choose a CSV file first." }));
      return;
    }
    const form = new FormData();
    form.append("file", file.files[0], file.files[0].name);
    const response = await api("/api/findings/import", { method: "POST", body: form });
    if (response.status !== 200) {
      report.replaceChildren(el("p", { class: "why", text: "Not imported: " +
        await detail(response) }));
      return;
    }
    showReport(report, await response.json());
    file.value = "";
    document.getElementById("import-name").textContent = "";
    await refresh();
  });

  function showReport(report, data) {
    const parts = [el("p", { class: "summary", text: `${data.rows} row${data.rows === 1 ? "" : "s"}: ` +
      `${data.applied} finding${data.applied === 1 ? "" : "s"} recorded, ` +
      `${data.unmatched.length} waiting for their image, ${data.invalid.length} not valid.` })];
    const items = [];
    for (const [kind, rows] of [["invalid", data.invalid], ["unmatched", data.unmatched],
      ["several", data.several]]) {
      for (const row of rows) {
        items.push(el("li", { class: kind, "data-row": row.row },
          `row ${row.row}${row.file ? " (" + row.file + ")" : ""}: ${row.why}`));
      }
    }
    if (items.length) parts.push(el("ul", { class: "rows" }, ...items));
    report.replaceChildren(...parts);
  }

  refresh();
}

// ------------------------------------------------------------------------------- about

function aboutPage() {
  function facts(list, pairs) {
    for (const [name, value] of pairs) {
      if (value === undefined || value === null || value === "") continue;
      list.append(el("dt", { text: name }), el("dd", { text: String(value) }));
    }
  }
  const number = (x) => (typeof x === "number" ? x.toFixed(4) : x);

  loadModel().then((m) => {
    const variant = (m.metrics && m.metrics.variant) || {};
    facts(document.getElementById("model"), [
      ["version", m.version], ["variant", m.variant], ["quantization", m.quantization],
      ["created", m.created_at], ["pipeline run", m.pipeline_run_id],
      ["training data", m.synthetic_data ? "SYNTHETIC phantoms (generated, no patients)"
        : (m.synthetic_data === false ? "real images (see the pipeline's data)" : "not stated")],
      ["data fingerprint", m.data_fingerprint], ["classes", m.class_names.join(", ")],
      ["input", `${m.input_size} × ${m.input_size} grayscale`], ["runtime", m.runtime],
      ["model sha256", m.sha256], ["manifest verified", m.verified_manifest ? "yes" : "no (bare model file)"],
      ["signed by", m.signed_by || "not signed (no trusted key configured)"],
      ["why this variant", variant.selection_reason],
      ["variant macro F1", number(variant.macro_f1)],
      ["attention heat map", m.has_attention ? "yes" : "no"],
      ["images kept", m.keep_images ? "yes (--keep-images)" : "no, only the results"],
    ]);
    const r = m.referral || {};
    facts(document.getElementById("referral"), [
      ["refer: out of distribution", m.has_ood_score
        ? `when the OOD score is above ${r.ood_threshold}` : "this model has no OOD score"],
      ["refer: low confidence", `when the top probability is below ${r.refer_below}`],
      ["how it was chosen", r.method], ["calibration temperature", r.temperature],
    ]);
    const gates = document.querySelector("#gates tbody");
    for (const gate of (m.metrics && m.metrics.gates) || []) {
      gates.append(el("tr", {}, el("td", { text: gate.gate || gate.metric }),
        el("td", { text: number(gate.value) }),
        el("td", { text: `${gate.comparison || ""} ${number(gate.threshold)}` }),
        el("td", { class: gate.passed ? "pass" : "fail", text: gate.passed ? "pass" : "fail" })));
    }
    if (!gates.children.length) {
      gates.append(el("tr", {}, el("td", { text: "no gate record in the manifest" })));
    }
    const ev = (m.metrics && m.metrics.evaluator) || {};
    facts(document.getElementById("evaluation"), [
      ["examples", ev.example_count], ["accuracy", number(ev.accuracy)],
      ["macro F1", number(ev.macro_f1)],
      [`${ev.priority_class || "priority"} recall`, number(ev.priority_recall)],
      ["calibration error (ECE)", number(ev.calibration && ev.calibration.expected_calibration_error)],
      ["defined as", ev.metric_definition],
    ]);
    const perClass = document.querySelector("#per-class tbody");
    for (const [name, v] of Object.entries(ev.per_class || {})) {
      perClass.append(el("tr", {}, el("td", { text: name }), el("td", { text: number(v.precision) }),
        el("td", { text: number(v.recall) }), el("td", { text: number(v.f1_score) })));
    }
    if (m.reload && m.reload.last_error) {
      const box = document.getElementById("reload-error");
      box.hidden = false;
      box.textContent = `A newer model was refused (${m.reload.last_error.at}); still serving ` +
        `${m.version}: ${m.reload.last_error.error}`;
    }
    const events = document.getElementById("events");
    for (const event of (m.reload && m.reload.events) || []) {
      events.append(el("li", { text: `${event.at}: ${event.event} ${event.detail}` }));
    }
  });
}

const PAGES = { triage: triagePage, history: historyPage, review: reviewPage, about: aboutPage };
document.addEventListener("DOMContentLoaded", () => {
  loadMe().catch(() => {});
  const page = PAGES[document.body.dataset.page]; // a page's own script may add its entry
  if (page) page();
});
