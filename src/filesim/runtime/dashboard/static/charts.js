// Charts: per server, NFS operations per second and sync latency p50/p99 over the last hour,
// drawn with uPlot (vendored) from /api/history.
import { h, api, notice } from "./lib.js";

const charts = {};   // server name -> uPlot instance
let timer = null;
const $ = (id) => document.getElementById(id);

function options(name, width) {
  return {
    title: name, width, height: 220,
    scales: { x: { time: true }, ops: { auto: true }, ms: { auto: true } },
    series: [
      {},
      { label: "NFS ops/s", scale: "ops", stroke: "#2563eb", width: 1.5, fill: "rgba(37,99,235,0.08)",
        value: (u, v) => (v === null ? "–" : v.toFixed(1)) },
      { label: "sync p50 ms", scale: "ms", stroke: "#16a34a", width: 1.5, spanGaps: false,
        value: (u, v) => (v === null ? "–" : v.toFixed(1)) },
      { label: "sync p99 ms", scale: "ms", stroke: "#dc2626", width: 1.5, dash: [4, 3],
        value: (u, v) => (v === null ? "–" : v.toFixed(1)) },
    ],
    axes: [
      {},
      { scale: "ops", label: "ops/s", size: 50 },
      { scale: "ms", label: "ms", side: 1, size: 50, grid: { show: false } },
    ],
  };
}

async function load() {
  let doc;
  try {
    doc = await api("/api/history");
  } catch (err) {
    notice(err.message, true);
    return;
  }
  const grid = $("chart-grid");
  for (const [name, s] of Object.entries(doc.servers).sort()) {
    const data = [s.time, s.nfs_ops, s.p50_ms, s.p99_ms];
    if (!charts[name]) {
      const box = h("div", { class: "card chart", "data-testid": `chart-${name}` });
      grid.append(box);
      const width = Math.max(300, box.clientWidth - 20);
      charts[name] = new window.uPlot(options(name, width), data, box);
    } else {
      charts[name].setData(data);
    }
  }
  clearTimeout(timer);
  timer = setTimeout(() => { if (!$("view-charts").hidden) load(); }, doc.interval_s * 1000);
}

export function shown() { load(); }
