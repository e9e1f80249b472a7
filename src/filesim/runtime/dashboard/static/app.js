// The dashboard: shared state, the view switcher and the live event stream.
import { api, notice } from "./lib.js";
import * as servers from "./servers.js";
import * as files from "./files.js";
import * as events from "./events.js";
import * as charts from "./charts.js";
import * as faults from "./faults.js";

const views = { servers, files, events, charts, faults };
export const state = { doc: null, ready: null, counts: null, view: "servers" };
const listeners = [];

export function onEvent(fn) { listeners.push(fn); }

async function refresh() {
  try {
    const [doc, ready] = await Promise.all([
      api("/api/servers"),
      fetch("/readyz").then((r) => r.json()),
    ]);
    state.doc = doc;
    state.ready = ready;
    document.getElementById("summary").textContent =
      `${doc.servers.length} servers · profile ${doc.profile} · ${doc.root}`;
    for (const view of Object.values(views)) view.update?.(state);
  } catch (err) {
    notice(`cannot reach the API: ${err.message}`, true);
  }
}

async function refreshCounts() {
  if (state.counts && state.view !== "servers") return;  // only the Servers view shows them
  try {
    state.counts = await api("/api/counts");
    servers.update(state);
  } catch { /* the next round tries again */ }
}

function show(name) {
  if (!views[name]) name = "servers";
  state.view = name;
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const link of document.querySelectorAll("#tabs a")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  views[name].shown?.(state);
}

export function go(view, options = {}) {
  if (view === "files" && options.server) files.open(options.server, options.path || "");
  if (view === "events" && options.server !== undefined) events.focus(options.server, options.path);
  location.hash = view;
  show(view);
}

// The live feed: /api/events as server-sent events, read with fetch (named events and
// reconnection handled here), so every view hears about changes as they happen.
async function stream() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const response = await fetch("/api/events?follow=1&format=sse&limit=500");
      if (!response.ok) throw new Error(String(response.status));
      live.className = "live on";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6)).join("\n");
          if (data) {
            const event = JSON.parse(data);
            for (const fn of listeners) fn(event);
          }
        }
      }
    } catch { /* reconnect below */ }
    live.className = "live off";
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function start() {
  for (const view of Object.values(views)) view.init?.(state);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  show(location.hash.slice(1) || "servers");
  onEvent((event) => {
    if (event.kind.startsWith("sync.") || event.kind.startsWith("fault.")
        || event.kind.startsWith("server.")) scheduleRefresh();
  });
  refresh().then(refreshCounts);
  setInterval(refresh, 2000);
  setInterval(refreshCounts, 5000);
  stream();
}

let pending = null;
export function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 250);
}

start();
