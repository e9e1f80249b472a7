// Servers at a glance: one card per NAS, rebuilt from /api/servers, /readyz and /api/counts.
import { h, api, when, ms, copy, notice } from "./lib.js";
import { go, scheduleRefresh } from "./app.js";

const connect = {};  // server name -> its ConnectDoc (mount commands, PV/PVC)

async function connection(name) {
  if (!connect[name]) connect[name] = await api(`/api/servers/${encodeURIComponent(name)}/connect`);
  return connect[name];
}

async function resume(name) {
  try {
    await api(`/api/servers/${encodeURIComponent(name)}/resume`, { method: "POST", json: {} });
    notice(`${name}: sync resumed`);
    scheduleRefresh();
  } catch (err) {
    notice(`${name}: ${err.message}`, true);
  }
}

async function clearFault(id) {
  try {
    await api(`/api/faults/${encodeURIComponent(id)}`, { method: "DELETE" });
    scheduleRefresh();
  } catch (err) {
    notice(err.message, true);
  }
}

function syncState(s) {
  const st = s.sync_status;
  if (s.storage === "direct") return { text: "direct (no sync)", cls: "ok" };
  if (!st) return { text: s.sync.agent ? "starting" : "no agent here", cls: "muted" };
  if (st.halted) return { text: "halted", cls: "bad" };
  if (!st.running && st.continuous) return { text: st.ready ? "stopped" : "starting", cls: "warn" };
  if (!st.ready) return { text: "initial sync", cls: "warn" };
  return { text: st.continuous ? "running" : "done (start only)", cls: "ok" };
}

function copyButton(name, key, label) {
  return h("button", {
    type: "button", class: "small", "data-testid": `copy-${key}-${name}`,
    onclick: async () => {
      const doc = await connection(name);
      const text = key === "pv" ? doc.pv_pvc : doc[key];
      if (!text) { notice("no PV/PVC renderer in this process (run `filesim up`)", true); return; }
      if (key === "windows" && doc.windows_note) notice(doc.windows_note, true);
      copy(text, `${label} command of ${name}`);
    },
  }, label);
}

function card(s, ready, counts) {
  const st = s.sync_status;
  const health = ready?.servers?.[s.name]?.nfs ?? "?";
  const sync = syncState(s);
  const c = counts?.servers?.[s.name];
  const rows = [
    ["address", `${s.host}:${s.port}`],
    ["export", `${s.export} (${s.readonly ? "ro" : "rw"})`],
    ["folder", s.folder],
    ["storage", s.storage],
    ["direction", st ? st.direction + (st.continuous ? "" : ", at start") : s.sync.direction],
    ["files", c ? `${c.folder ?? "–"} in folder · ${c.export ?? "–"} in export` : "counting…"],
  ];
  if (st) {
    rows.push(["latency", `p50 ${ms(st.p50_ms)} · p99 ${ms(st.p99_ms)}`]);
    rows.push(["activity", `${st.actions} actions · ${st.pending} pending · last ${st.last_sync ? when(st.last_sync) : "never"}`]);
    rows.push(["problems", `${st.errors} errors · ${st.conflicts} conflicts`]);
  }
  return h("article", { class: "card", "data-testid": `server-${s.name}`, dataset: { server: s.name } },
    h("header", {},
      h("h2", { text: s.name }),
      h("span", { class: `badge role-${s.role}`, text: s.role }),
      h("span", { class: `badge ${health === "ok" ? "ok" : "bad"}`, title: "NFS answers RPC NULL",
                  "data-testid": `health-${s.name}`, text: `NFS ${health}` }),
      h("span", { class: `badge ${sync.cls}`, "data-testid": `sync-${s.name}`, text: sync.text })),
    st?.halted ? h("div", { class: "halted", "data-testid": `halted-${s.name}` },
      h("p", { text: st.halted }),
      h("button", { type: "button", class: "danger", "data-testid": `resume-${s.name}`,
                    onclick: () => resume(s.name) }, "Resume sync")) : null,
    h("dl", {}, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
    s.faults.length ? h("ul", { class: "faults" }, s.faults.map((f) =>
      h("li", {}, h("span", { class: "badge bad", text: f.id }), ` ${f.summary} `,
        h("button", { type: "button", class: "small", title: "clear this fault",
                      onclick: () => clearFault(f.id) }, "clear")))) : null,
    h("footer", {},
      h("span", { class: "muted", text: "copy: " }),
      copyButton(s.name, "linux", "Linux"), copyButton(s.name, "linux_v4", "Linux v4.1"),
      copyButton(s.name, "macos", "macOS"),
      copyButton(s.name, "windows", "Windows"), copyButton(s.name, "pv", "PV/PVC"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "small", onclick: () => go("files", { server: s.name }) }, "Files"),
      h("button", { type: "button", class: "small", onclick: () => go("events", { server: s.name }) }, "Events")));
}

const built = new Map();  // server name -> { sig, el }: a card is rebuilt only when it changed

export function update(state) {
  if (!state.doc) return;
  const cards = state.doc.servers.map((s) => {
    const health = state.ready?.servers?.[s.name];
    const sig = JSON.stringify([s, health, state.counts?.servers?.[s.name]?.folder,
                                state.counts?.servers?.[s.name]?.export]);
    const known = built.get(s.name);
    if (known && known.sig === sig) return known.el;
    const el = card(s, state.ready, state.counts);
    built.set(s.name, { sig, el });
    return el;
  });
  const grid = document.getElementById("server-grid");
  if (cards.some((el, i) => grid.children[i] !== el) || grid.children.length !== cards.length) {
    grid.replaceChildren(...cards);
  }
}
