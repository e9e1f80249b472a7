// Faults: a form built from the FaultSpec model's own JSON schema (/openapi.json), so the page
// offers exactly the fields, kinds, bounds and descriptions the API validates with; the API's
// answer (422 with the first problem) is shown as it is.
import { h, api, when, notice } from "./lib.js";
import { scheduleRefresh } from "./app.js";

const $ = (id) => document.getElementById(id);
let spec = null;     // the FaultSpec schema
let kinds = [];

// Which fields each kind takes (the model's validator says the rest must stay unset).
const FIELDS = {
  latency: ["procedures", "delay_ms", "jitter_ms", "distribution", "duration_s"],
  error: ["error", "procedures", "paths", "probability", "duration_s"],
  readonly: ["duration_s"],
  outage: ["mode", "duration_s"],
  "sync-pause": ["duration_s"],
  "sync-slow": ["delay_ms", "duration_s"],
};

function field(name) {
  const prop = spec.properties[name] || {};
  const label = h("label", { title: prop.description || "" }, name);
  let input;
  const choices = prop.enum || prop.anyOf?.find((a) => a.enum)?.enum;
  if (choices) {
    input = h("select", { name }, choices.map((c) => h("option", { value: c, text: c })));
    if (prop.default !== undefined && prop.default !== null) input.value = prop.default;
  } else if (prop.type === "array") {
    input = h("input", { name, type: "text", placeholder: name === "paths" ? "in/*.csv, …" : "READ, WRITE, … (empty: all)" });
    input.dataset.list = "1";
  } else {
    const num = prop.anyOf?.find((a) => a.type === "number") || prop;
    const isNum = num.type === "number" || num.type === "integer";
    input = h("input", {
      name, type: isNum ? "number" : "text", step: "any",
      min: num.minimum ?? num.exclusiveMinimum, max: num.maximum,
      placeholder: prop.default !== undefined && prop.default !== null ? String(prop.default) : (name === "error" ? "EIO, NOSPC, JUKEBOX…" : ""),
    });
    if (isNum) input.dataset.number = "1";
  }
  label.append(input);
  return label;
}

function renderFields() {
  const kind = $("fault-form").elements.kind.value;
  $("fault-fields").replaceChildren(...(FIELDS[kind] || []).filter((f) => spec.properties[f]).map(field));
}

function body(form) {
  const data = { server: form.elements.server.value, kind: form.elements.kind.value };
  for (const input of $("fault-fields").querySelectorAll("input, select")) {
    const raw = input.value.trim();
    if (!raw) continue;
    if (input.dataset.list) data[input.name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else if (input.dataset.number) data[input.name] = Number(raw);
    else data[input.name] = raw;
  }
  return data;
}

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  $("fault-error").textContent = "";
  try {
    const added = await api("/api/faults", { method: "POST", json: body(form) });
    notice(`${added.id} on ${added.server}: ${added.summary}`);
    loadFaults();
    scheduleRefresh();
  } catch (err) {
    $("fault-error").textContent = err.message;
  }
}

async function clear(path) {
  try {
    await api(path, { method: "DELETE" });
    loadFaults();
    scheduleRefresh();
  } catch (err) { notice(err.message, true); }
}

async function loadFaults() {
  const doc = await api("/api/faults");
  $("faults-rows").replaceChildren(...doc.faults.map((f) => h("tr", { dataset: { id: f.id } },
    h("td", { text: f.id }), h("td", { text: f.server }), h("td", { text: f.summary }),
    h("td", { text: f.origin }), h("td", { text: when(f.added) }), h("td", { text: f.expires ? when(f.expires) : "never" }),
    h("td", {}, h("button", { type: "button", class: "small", "data-testid": `clear-${f.id}`,
                              onclick: () => clear(`/api/faults/${encodeURIComponent(f.id)}`) }, "clear")))));
  if (!doc.faults.length) $("faults-rows").replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted", text: "No active faults." })));
}

export async function init() {
  const form = $("fault-form");
  form.addEventListener("submit", submit);
  form.elements.kind.addEventListener("change", renderFields);
  $("faults-clear-all").addEventListener("click", () => clear("/api/faults"));
  const openapi = await api("/openapi.json");
  spec = openapi.components.schemas.FaultSpec;
  kinds = openapi.components.schemas.FaultKind?.enum || Object.keys(FIELDS);
  form.elements.kind.replaceChildren(...kinds.map((k) => h("option", { value: k, text: k })));
  renderFields();
}

export function update(state) {
  const select = $("fault-form").elements.server;
  const names = state.doc.servers.map((s) => s.name);
  if (select.options.length !== names.length) {
    select.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
  }
}

export function shown() { loadFaults(); }
