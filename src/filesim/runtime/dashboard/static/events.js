// Live events: the stream as a feed, filtered by server, kind and path; a file's history.
import { h, api, q, size, when } from "./lib.js";
import { onEvent } from "./app.js";

const KEEP = 2000;      // events kept in memory
const SHOWN = 500;      // rows in the table
const feed = [];
const $ = (id) => document.getElementById(id);

function wanted(event) {
  const server = $("events-server").value, kind = $("events-kind").value;
  const path = $("events-path").value.toLowerCase();
  if (server && event.server !== server) return false;
  if (kind && !event.kind.startsWith(kind)) return false;
  if (path && !(event.path || "").toLowerCase().includes(path)) return false;
  return true;
}

function detail(event) {
  const d = event.detail || {};
  if (d.error) return d.error;
  if (d.reason) return d.reason;
  if (d.summary) return d.summary;
  if (d.dest) return `→ ${d.dest}`;
  if (d.kept_as) return `kept the other as ${d.kept_as}`;
  const keys = Object.keys(d);
  return keys.length ? JSON.stringify(d) : "";
}

function kindClass(kind) {
  if (kind.includes("error") || kind.includes("halt") || kind === "sync.conflict") return "bad";
  if (kind.startsWith("fault.")) return "warn";
  if (kind.startsWith("sync.")) return "ok";
  return "";
}

function row(event) {
  return h("tr", { dataset: { kind: event.kind, server: event.server || "" } },
    h("td", { class: "time", text: when(event.time) }),
    h("td", { text: event.server || "" }),
    h("td", {}, h("span", { class: `badge ${kindClass(event.kind)}`, text: event.kind })),
    h("td", { class: "name" }, event.path
      ? h("a", { href: "#events", title: "what happened to this file",
                 onclick: (e) => { e.preventDefault(); history(event.server, event.path); } }, event.path)
      : ""),
    h("td", { class: "num", text: event.size === undefined ? "" : size(event.size) }),
    h("td", { class: "detail", text: detail(event) }));
}

function render() {
  const shown = [];
  for (let i = feed.length - 1; i >= 0 && shown.length < SHOWN; i--) {
    if (wanted(feed[i])) shown.push(row(feed[i]));
  }
  $("events-rows").replaceChildren(...shown);
  $("events-count").textContent = `${shown.length} shown of ${feed.length} received`;
}

let renderPending = false;
function scheduleRender() {
  if (renderPending || $("events-pause").checked) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

export async function history(server, path) {
  const box = $("history");
  box.hidden = false;
  box.replaceChildren(h("h3", { text: `${path}` }), h("p", { class: "muted", text: `on ${server}: loading…` }));
  try {
    const doc = await api(`/api/events${q({ server, path: encodeURIComponent(path), limit: 1000 })}`);
    const items = doc.events.slice().reverse().map((e) =>
      h("li", {}, h("span", { class: "time", text: when(e.time) }), " ",
        h("span", { class: `badge ${kindClass(e.kind)}`, text: e.kind }), " ",
        e.side ? h("span", { class: "muted", text: e.side }) : null, " ",
        e.size !== undefined ? size(e.size) : "", " ", detail(e)));
    box.replaceChildren(
      h("header", {}, h("h3", { text: path }),
        h("button", { type: "button", class: "small", onclick: () => { box.hidden = true; } }, "close")),
      h("p", { class: "muted", text: `${doc.events.length} events on ${server}, newest first` }),
      h("ol", { class: "timeline" }, items));
  } catch (err) {
    box.replaceChildren(h("p", { class: "error", text: err.message }));
  }
}

export function focus(server, path) {
  $("events-server").value = server || "";
  $("events-path").value = "";
  render();
  if (server && path) history(server, path);
}

export function init() {
  for (const id of ["events-server", "events-kind", "events-path", "events-pause"]) {
    $(id).addEventListener("input", render);
    $(id).addEventListener("change", render);
  }
  onEvent((event) => {
    feed.push(event);
    if (feed.length > KEEP) feed.splice(0, feed.length - KEEP);
    if (!$("view-events").hidden) scheduleRender();
  });
}

export function update(state) {
  const select = $("events-server");
  const names = state.doc.servers.map((s) => s.name);
  if (select.options.length !== names.length + 1) {
    const current = select.value;
    select.replaceChildren(h("option", { value: "", text: "all" }),
      ...names.map((n) => h("option", { value: n, text: n })));
    select.value = current;
  }
}

export function shown() { render(); }
