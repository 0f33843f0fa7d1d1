// Flint dashboard: polls /ui/api/state every second, keeps each agent's
// points and redraws small SVG charts. Everything is written with
// textContent/setAttribute, never innerHTML, so names from agent specs can
// never become markup.
"use strict";

const WINDOW_MS = 5 * 60 * 1000; // what the charts show
const MIN_SPAN_MS = 30 * 1000;    // the narrowest time axis
const KEEP_POINTS = 600;          // what the page keeps per agent
const SVG = "http://www.w3.org/2000/svg";

const state = { seq: 0, interval: 1000, agents: new Map(), failures: 0 };
const emptyNote = document.getElementById("empty"); // kept while cards replace it

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// svgEl sets styles through the CSSOM: the page's Content-Security-Policy
// refuses style attributes.
function svgEl(tag, attrs, styles) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const [k, v] of Object.entries(styles || {})) e.style.setProperty(k, v);
  return e;
}

function fmt(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (Math.abs(n) >= 1000) return (n / 1000).toFixed(1) + "k";
  return n.toFixed(digits === undefined ? (Number.isInteger(n) ? 0 : 1) : digits);
}

function fmtMs(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const ms = seconds * 1000;
  if (ms >= 1000) return (ms / 1000).toFixed(2) + "s";
  return ms.toFixed(ms < 10 ? 1 : 0) + "ms";
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

// Chart definitions: which point fields each chart draws, and how.
const CHARTS = [
  { title: "Replicas", unit: "", series: [
    { key: "ready", label: "ready", color: "var(--green)", area: true },
    { key: "replicas", label: "asked", color: "var(--blue)" },
    { key: "desired", label: "desired", color: "var(--orange)", dashed: true, skipNegative: true },
  ] },
  { title: "Requests in flight", unit: "", series: [
    { key: "inFlight", label: "in flight", color: "var(--purple)", area: true },
    { key: "held", label: "held", color: "var(--red)" },
  ] },
  { title: "Latency", unit: "ms", series: [
    { key: "p50", label: "p50", color: "var(--teal)", scale: 1000 },
    { key: "p99", label: "p99", color: "var(--pink)", scale: 1000 },
  ] },
  { title: "Throughput", unit: "/s", marks: "coldStarts", series: [
    { key: "rps", label: "requests", color: "var(--blue)", area: true },
    { key: "errorRate", label: "5xx", color: "var(--red)" },
    { key: "rejectRate", label: "refused", color: "var(--orange)", dashed: true },
  ] },
];

function buildCard(key) {
  const card = el("article", "agent");
  card.dataset.agent = key;
  const head = el("div", "head");
  const h2 = el("h2");
  h2.append(el("span", "ns"), el("span", "name"));
  const link = el("a", "url");
  head.append(h2, el("span", "badge proto"), el("span", "badge phase"), link);
  const failure = el("div", "failure");
  const stats = el("div", "stats");
  const charts = el("div", "charts");
  const figs = CHARTS.map((def) => {
    const fig = el("figure");
    const cap = el("figcaption");
    cap.append(el("span", "", def.title), el("span", "max"));
    const svg = svgEl("svg", { class: "chart", viewBox: "0 0 300 100", preserveAspectRatio: "none" });
    const legend = el("div", "legend");
    for (const s of def.series) {
      const item = el("span");
      const sw = el("i");
      sw.style.background = s.color;
      item.append(sw, document.createTextNode(s.label));
      legend.append(item);
    }
    if (def.marks) {
      const item = el("span");
      const sw = el("i");
      sw.style.background = "var(--orange)";
      sw.style.width = "3px";
      sw.style.height = "10px";
      item.append(sw, document.createTextNode("cold start"));
      legend.append(item);
    }
    fig.append(cap, svg, legend);
    charts.append(fig);
    return { def, svg, max: cap.querySelector(".max") };
  });
  const table = el("table", "decisions");
  table.append(el("caption", "", "Recent scale decisions"), el("tbody"));
  card.append(head, failure, stats, charts, table);
  return { card, figs };
}

function stat(label, value) {
  const s = el("span");
  s.append(document.createTextNode(label + " "), el("b", "", value));
  return s;
}

function renderCard(a) {
  const view = a.view;
  const cur = a.info;
  const card = view.card;
  card.querySelector("h2 .ns").textContent = cur.namespace + "/";
  card.querySelector("h2 .name").textContent = cur.name;
  card.querySelector(".proto").textContent = cur.protocol;
  const phase = card.querySelector(".phase");
  phase.textContent = cur.phase;
  phase.className = "badge phase " + cur.phase.replace(/ /g, "-");
  const link = card.querySelector(".url");
  link.textContent = cur.url;
  link.href = cur.url;

  const failure = card.querySelector(".failure");
  failure.textContent = cur.failure || "";
  failure.hidden = !cur.failure;

  const last = a.points.length ? a.points[a.points.length - 1] : {};
  const recent = recentRates(a.points);
  const desired = cur.desired >= 0 ? String(cur.desired) : "–";
  const stats = card.querySelector(".stats");
  stats.replaceChildren(
    stat("replicas", cur.ready + " ready / " + cur.replicas + " asked"),
    stat("desired", desired + " (" + cur.minReplicas + "–" + cur.maxReplicas + ")"),
    stat("concurrency", cur.concurrency > 0 ? String(cur.concurrency) : "unlimited"),
    stat("in flight", String(cur.inFlight)),
    stat("held", String(cur.held)),
    stat("req/s", fmt(recent.rps)),
    stat("p50", fmtMs(last.p50)),
    stat("p99", fmtMs(last.p99)),
    stat("cold starts", String(cur.coldStartsTotal)),
    stat("requests", String(cur.requestsTotal)),
    stat("last invocation", ago(cur.lastInvocationAt)),
  );

  for (const f of view.figs) drawChart(f, a.points);

  const tbody = card.querySelector(".decisions tbody");
  const rows = cur.decisions.slice(-6).reverse().map((d) => {
    const tr = el("tr");
    const reason = el("td", "reason");
    reason.append(el("code", "", d.reason), document.createTextNode(d.panic && d.reason !== "panic" ? " (panic)" : ""));
    tr.append(el("td", "", new Date(d.time).toLocaleTimeString()),
      el("td", "change", d.from + " → " + d.to), reason,
      el("td", "", "demand " + fmt(d.demand, 1)));
    return tr;
  });
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", "none", "no scale changes yet");
    td.colSpan = 4;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function drawChart(f, points) {
  // Up to five minutes; a younger history is stretched over the width (but
  // at least MIN_SPAN_MS) so a fresh gateway does not draw a sliver.
  const end = points.length ? points[points.length - 1].t : Date.now();
  const first = points.length ? points[0].t : end;
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, end - first));
  const start = end - span;
  const shown = points.filter((p) => p.t >= start);
  let max = 0;
  for (const s of f.def.series) {
    for (const p of shown) {
      const v = p[s.key];
      if (v !== null && v !== undefined) max = Math.max(max, v * (s.scale || 1));
    }
  }
  max = niceMax(max);
  const maxText = f.def.unit === "ms" ? fmtMs(max / 1000) : fmt(max) + f.def.unit;
  f.max.textContent = "max " + maxText + " · " + spanText(span);
  const x = (t) => ((t - start) / span) * 300;
  const y = (v) => 98 - (v / max) * 94;
  const kids = [0.25, 0.5, 0.75].map((g) => svgEl("line", { class: "grid", x1: 0, x2: 300, y1: y(max * g), y2: y(max * g) }));
  if (f.def.marks) {
    for (const p of shown) {
      if (p[f.def.marks] > 0) kids.push(svgEl("line", { class: "mark", x1: x(p.t), x2: x(p.t), y1: 0, y2: 12 }));
    }
  }
  for (const s of f.def.series) {
    let d = "";
    let pen = false;
    let first = null, lastX = null;
    for (const p of shown) {
      const raw = p[s.key];
      if (raw === null || raw === undefined || (s.skipNegative && raw < 0)) { pen = false; continue; }
      const px = x(p.t), py = y(raw * (s.scale || 1));
      d += (pen ? "L" : "M") + px.toFixed(1) + " " + py.toFixed(1);
      if (first === null) first = px;
      lastX = px;
      pen = true;
    }
    if (!d) continue;
    if (s.area && first !== null) {
      kids.push(svgEl("path", { class: "area", d: d + "L" + lastX.toFixed(1) + " 98L" + first.toFixed(1) + " 98Z" }, { fill: s.color }));
    }
    kids.push(svgEl("path", { d, class: s.dashed ? "dashed" : "" }, { stroke: s.color }));
  }
  f.svg.replaceChildren(...kids);
}

function spanText(ms) {
  const s = Math.round(ms / 1000);
  return s < 120 ? "last " + s + "s" : "last " + Math.round(s / 60) + "m";
}

function niceMax(v) {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// recentRates averages the last few seconds, so the numbers do not jump
// with every sample.
function recentRates(points) {
  const tail = points.slice(-5);
  const avg = (k) => tail.length ? tail.reduce((s, p) => s + (p[k] || 0), 0) / tail.length : 0;
  return { rps: avg("rps"), errors: avg("errorRate") };
}

function renderTotals() {
  let ready = 0, asked = 0, inflight = 0, held = 0, rps = 0, errs = 0;
  for (const a of state.agents.values()) {
    ready += a.info.ready; asked += a.info.replicas; inflight += a.info.inFlight; held += a.info.held;
    const r = recentRates(a.points);
    rps += r.rps; errs += r.errors;
  }
  document.getElementById("t-agents").textContent = String(state.agents.size);
  document.getElementById("t-replicas").textContent = ready + " / " + asked;
  document.getElementById("t-inflight").textContent = String(inflight);
  document.getElementById("t-held").textContent = String(held);
  document.getElementById("t-rps").textContent = fmt(rps);
  document.getElementById("t-errors").textContent = fmt(errs);
}

function apply(data) {
  if (data.seq < state.seq) { state.agents.clear(); } // the gateway restarted
  state.seq = data.seq;
  state.interval = data.intervalMillis || 1000;
  const main = document.getElementById("agents");
  const present = new Set();
  for (const info of data.agents) {
    const key = info.namespace + "/" + info.name;
    present.add(key);
    let a = state.agents.get(key);
    if (!a) {
      a = { points: [], view: buildCard(key) };
      state.agents.set(key, a);
    }
    a.info = info;
    a.points = a.points.concat(info.points).slice(-KEEP_POINTS);
  }
  for (const [key, a] of state.agents) {
    if (!present.has(key)) { a.view.card.remove(); state.agents.delete(key); }
  }
  const cards = [...state.agents.keys()].sort().map((k) => state.agents.get(k).view.card);
  emptyNote.textContent = "No agents. Start some with: flint up -f examples/";
  main.replaceChildren(...(cards.length ? cards : [emptyNote]));
  for (const a of state.agents.values()) renderCard(a);
  renderTotals();
  main.dataset.rendered = String(Number(main.dataset.rendered) + 1);
}

// Credentials, when the gateway requires them, stay in this tab only.
const login = document.getElementById("login");
login.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("flint-key", document.getElementById("key").value.trim());
  login.hidden = true;
  state.failures = 0;
});

function headers() {
  const key = sessionStorage.getItem("flint-key");
  return key ? { Authorization: "Bearer " + key } : {};
}

async function poll() {
  try {
    const res = await fetch("api/state?since=" + state.seq, { cache: "no-store", headers: headers() });
    if (res.status === 401) {
      login.hidden = false;
      throw new Error("credentials required");
    }
    if (!res.ok) throw new Error("HTTP " + res.status);
    apply(await res.json());
    state.failures = 0;
    document.getElementById("live").className = "dot ok";
    document.getElementById("updated").textContent = "live · updated " + new Date().toLocaleTimeString();
  } catch (err) {
    state.failures++;
    document.getElementById("live").className = "dot bad";
    document.getElementById("updated").textContent = "cannot reach the gateway (" + err.message + "); retrying";
  }
  setTimeout(poll, state.failures ? Math.min(5000, state.interval * (1 + state.failures)) : state.interval);
}

poll();
