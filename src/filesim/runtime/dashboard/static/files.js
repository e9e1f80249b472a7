// Files: one directory of a server, folder and export side by side, one page at a time.
import { h, api, q, size, when, notice, debounce } from "./lib.js";
import { go, onEvent } from "./app.js";

const PAGE = 200;
const view = { server: "", path: "", offset: 0, listing: null };
const $ = (id) => document.getElementById(id);
const enc = (name) => encodeURIComponent(name);

export function open(server, path) {
  view.server = server;
  view.path = path;
  view.offset = 0;
  $("files-server").value = server;
  load();
}

function base() { return `/api/servers/${enc(view.server)}`; }

// A new name typed by the user, as a ref (percent-encoded UTF-8) below the current directory.
function child(name) {
  const encoded = encodeURIComponent(name).replace(/%2F/gi, "/");
  return view.path ? `${view.path}/${encoded}` : encoded;
}

// `withConflicts`: also reload the conflict list (a walk of the whole server; not needed to
// turn a page or filter the rows).
async function load(withConflicts = true) {
  if (!view.server) return;
  const params = { path: view.path, offset: view.offset, limit: PAGE,
                   q: $("files-filter").value, state: $("files-state").value };
  try {
    const [listing, conflicts] = await Promise.all([
      api(`${base()}/files${q(params)}`),
      withConflicts ? api(`${base()}/conflicts`) : null,
    ]);
    view.listing = listing;
    render(listing);
    if (conflicts) renderConflicts(conflicts);
  } catch (err) {
    if (err.status === 404 && view.path) { view.path = ""; return load(); }
    notice(err.message, true);
  }
}

function side(entry) {
  if (!entry) return [h("td", { class: "absent", text: "—" }), h("td", { class: "absent" })];
  const kind = entry.kind === "file" ? size(entry.size) : entry.kind;
  return [h("td", { class: "num", text: kind }), h("td", { text: when(entry.mtime) })];
}

function download(row, which) {
  return h("a", { href: `${base()}/files/content${q({ path: row.ref, side: which })}`,
                  download: "", class: "button small", title: `download the ${which} copy` },
           which === "folder" ? "⤓ folder" : "⤓ export");
}

async function remove(row) {
  if (!confirm(`Delete ${row.name} from the tester's folder? The sync carries the deletion.`)) return;
  try {
    await api(`${base()}/files${q({ path: row.ref })}`, { method: "DELETE" });
    load();
  } catch (err) { notice(err.message, true); }
}

function renderRow(row) {
  const isDir = [row.folder, row.export].some((e) => e && e.kind === "dir");
  const name = isDir
    ? h("a", { href: "#files", onclick: (e) => { e.preventDefault(); view.path = row.ref; view.offset = 0; load(); } }, row.name + "/")
    : h("span", { text: row.name });
  const actions = h("td", { class: "actions" },
    !isDir && row.folder?.kind === "file" ? download(row, "folder") : null,
    !isDir && row.export?.kind === "file" ? download(row, "export") : null,
    h("button", { type: "button", class: "small", title: "what happened to this file",
                  onclick: () => go("events", { server: view.server, path: decodeRef(row.ref) }) }, "history"),
    row.folder ? h("button", { type: "button", class: "small danger", onclick: () => remove(row) }, "delete") : null);
  return h("tr", { dataset: { ref: row.ref, state: row.state } },
    h("td", { class: "name" }, name), ...side(row.folder), ...side(row.export),
    h("td", {}, h("span", { class: `badge state-${row.state}`, text: row.state })), actions);
}

function decodeRef(ref) {
  try { return decodeURIComponent(ref); } catch { return ref; }
}

function render(listing) {
  const crumbs = [h("a", { href: "#files", onclick: (e) => { e.preventDefault(); view.path = ""; view.offset = 0; load(); } }, "/")];
  for (const c of listing.crumbs) {
    crumbs.push(h("a", { href: "#files", onclick: (e) => { e.preventDefault(); view.path = c.ref; view.offset = 0; load(); } }, c.name + "/"));
  }
  $("crumbs").replaceChildren(...crumbs);
  $("files-rows").replaceChildren(...listing.rows.map(renderRow));
  const end = Math.min(listing.offset + listing.rows.length, listing.total);
  const states = Object.entries(listing.states).map(([k, v]) => `${v} ${k}`).join(", ");
  $("files-range").textContent = listing.total
    ? `${listing.offset + 1}–${end} of ${listing.total}${states ? ` (${states})` : ""}` : "empty";
  $("files-prev").disabled = listing.offset === 0;
  $("files-next").disabled = end >= listing.total;
  const notes = [];
  if (listing.storage === "direct") notes.push("This server exports its folder directly: one copy, nothing to sync.");
  if (!listing.folder_exists) notes.push("Not in the tester's folder.");
  if (!listing.export_exists) notes.push("Not in the export.");
  $("files-note").textContent = notes.join(" ");
}

function renderConflicts(doc) {
  const box = $("conflicts");
  if (!doc.conflicts.length) { box.replaceChildren(h("p", { class: "muted", text: "No conflicts." })); return; }
  box.replaceChildren(h("table", { class: "files" },
    h("thead", {}, h("tr", {}, ["kept the name", "set aside (lost)", "losing side", "when", ""].map((t) => h("th", { text: t })))),
    h("tbody", {}, doc.conflicts.map((c) => h("tr", {},
      h("td", {}, `${c.original} `, h("span", { class: "muted", text: size(c.original_entry?.size) })),
      h("td", {}, `${c.path} `, h("span", { class: "muted", text: size(c.copy_entry?.size) })),
      h("td", { text: c.side }), h("td", { text: c.stamp }),
      h("td", { class: "actions" },
        h("a", { class: "button small", download: "", href: `${base()}/files/content${q({ path: c.original_ref })}` }, "⤓ winner"),
        h("a", { class: "button small", download: "", href: `${base()}/files/content${q({ path: c.ref })}` }, "⤓ copy")))))),
    doc.truncated ? h("p", { class: "muted", text: "(more conflicts than shown)" }) : null);
}

async function upload(fileList) {
  for (const file of fileList) {
    try {
      await api(`${base()}/files/content${q({ path: child(file.name) })}`,
                { method: "PUT", body: file, headers: { "Content-Type": "application/octet-stream" } });
      notice(`uploaded ${file.name} into ${view.server}'s folder`);
    } catch (err) { notice(`${file.name}: ${err.message}`, true); }
  }
  load();
}

async function mkdir() {
  const name = prompt("New folder name");
  if (!name) return;
  try {
    await api(`${base()}/folders`, { method: "POST", json: { path: child(name) } });
    load();
  } catch (err) { notice(err.message, true); }
}

export function init() {
  $("files-server").addEventListener("change", (e) => open(e.target.value, ""));
  $("files-filter").addEventListener("input", debounce(() => { view.offset = 0; load(false); }, 200));
  $("files-state").addEventListener("change", () => { view.offset = 0; load(false); });
  $("files-prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); load(false); });
  $("files-next").addEventListener("click", () => { view.offset += PAGE; load(false); });
  $("files-refresh").addEventListener("click", load);
  $("files-mkdir").addEventListener("click", mkdir);
  $("files-upload").addEventListener("change", (e) => { upload([...e.target.files]); e.target.value = ""; });
  // A change on the server shown reloads the page of rows: soon after the first event, then at
  // most twice a second while events keep coming (a sync of 10,000 files is 10,000 events).
  let last = 0, timer = null;
  onEvent((event) => {
    if (event.server !== view.server || event.path === undefined || $("view-files").hidden || timer) return;
    timer = setTimeout(() => { timer = null; last = Date.now(); load(); },
                       Math.max(100, 500 - (Date.now() - last)));
  });
}

export function update(state) {
  const select = $("files-server");
  const names = state.doc.servers.map((s) => s.name);
  if (select.options.length !== names.length) {
    select.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    const first = !view.server;
    if (first) view.server = names[0] || "";
    select.value = view.server;
    if (first && !$("view-files").hidden) load();  // the page was opened at #files
  }
}

export function shown() { load(); }
