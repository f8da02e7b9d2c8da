// The live page: plain JS, no build step, no dependencies. It polls the worker's own JSON API
// (the same endpoints a client uses) and redraws; fetch carries the read token, EventSource could not.
"use strict";

const body = document.body;
const POLL_MS = Number(body.dataset.pollMs) || 1000;
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("interest-stream-token") || "";
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem("interest-stream-token", tokenInput.value);
  tick();
});

// --- small helpers -----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function api(path) {
  const headers = tokenInput.value ? { Authorization: `Bearer ${tokenInput.value}` } : {};
  try {
    const res = await fetch(path, { headers, cache: "no-store" });
    const json = await res.json().catch(() => ({}));
    return { status: res.status, body: json };
  } catch (err) {
    return { status: 0, body: { error: `worker unreachable: ${err}` } };
  }
}

function fmt(x, digits = 2) { return Number(x).toFixed(digits); }
function signed(x) { return (x >= 0 ? "+" : "") + fmt(x); }
function ago(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// A bar for a share in [0, 1].
function shareBar(label, value, cls = "") {
  return el("div", { class: "bar" }, el("span", {}, label),
    el("div", { class: "track" }, el("div", { class: `fill ${cls}`, style: `left:0;width:${(100 * value).toFixed(1)}%` })),
    el("span", { class: "value" }, `${Math.round(100 * value)}%`));
}

// A diverging bar for a reading in [-1, 1], drawn from the middle.
function signedBar(label, value) {
  const v = Math.max(-1, Math.min(1, value));
  const left = v >= 0 ? 50 : 50 + 50 * v;
  const node = el("div", { class: "bar" }, el("span", {}, label),
    el("div", { class: "track" }, el("div", { class: "mid" }),
      el("div", { class: `fill ${v >= 0 ? "pos" : "neg"}`, style: `left:${left}%;width:${Math.abs(50 * v)}%` })),
    el("span", { class: "value" }, signed(v)));
  node.dataset.value = String(v);
  return node;
}

function message(text) {
  const box = document.getElementById("message");
  box.hidden = !text;
  box.textContent = text || "";
}

function flash(node) {
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 900);
}

async function health() {
  const { status, body: h } = await api("/healthz");
  document.getElementById("health").textContent = status === 200
    ? `worker ${h.status} · events applied ${h.events_applied} · items ${h.items_indexed} · users here ${h.users ?? "…"}`
    : "worker: no answer";
}

// --- the user view -------------------------------------------------------------------------------

const PART_COLOURS = ["#6c8cff", "#5dbb7c", "#f0a94b", "#b07cd8", "#e8776f", "#4cb8c4", "#9aa1b1",
  "#2f4bbf", "#2e8b57", "#b8860b", "#7b3fa0", "#b03a2e", "#1f7f8c", "#5c6375"];  // one per ranker feature
let lastProfileKey = null;

function renderProfile(p) {
  const s = p.summary;
  const sentiment = document.getElementById("sentiment");
  sentiment.replaceChildren(
    Object.assign(signedBar("score", s.sentiment.score), { id: "sentiment-score" }),
    shareBar("negative", s.sentiment.negative, "neg"),
    shareBar("neutral", s.sentiment.neutral),
    shareBar("positive", s.sentiment.positive, "pos"));

  const topic = document.getElementById("topic");
  const cats = Object.entries(s.topic.categories || {});
  const found = Object.entries(s.topic.discovered || {});
  topic.replaceChildren(
    el("div", { class: "sub" }, "catalogue categories"),
    ...(cats.length ? cats.map(([c, v]) => shareBar(c, v)) : [el("div", { class: "muted" }, "no categories yet")]),
    el("div", { class: "sub" }, "discovered topics"),
    ...(found.length ? found.map(([c, v]) => shareBar(c, v)) : [el("div", { class: "muted" }, "none discovered yet")]),
    el("div", { class: "sub" }, `coherence ${fmt(s.topic.coherence)} (1 = one topic)`));

  // Several interests: clusters of the recent items, named, with their share and a few members.
  const interests = s.interests || [];
  document.getElementById("interests").replaceChildren(...(interests.length ? interests.map((it) =>
    el("div", { class: "interest", "data-name": it.name },
      shareBar(it.name, it.share),
      el("div", { class: "muted small" }, it.items.map((i) => i.title || i.item_id).join(" · ")
        + (it.size > it.items.length ? ` (+${it.size - it.items.length})` : ""))))
    : [el("div", { class: "muted" }, "none yet: no clicks or reviews")]));

  document.getElementById("style").replaceChildren(
    ...Object.entries(s.style).map(([k, v]) => signedBar(k, v)));

  const counts = p.event_counts;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const evidence = document.getElementById("evidence");
  const follows = s.entities.follows;
  evidence.replaceChildren(
    el("div", { id: "event-total", "data-total": String(total) }, `${total} events applied`),
    el("div", { class: "muted" }, Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ")),
    el("div", {}, `decayed weight ${fmt(p.weight)}`),
    el("div", { class: "muted" }, `newest event ${ago(p.updated_at)} (${p.last_event_id})`),
    follows.length ? el("div", {}, `follows ${follows.join(", ")}`) : "");

  const movers = document.getElementById("movers");
  const rows = [];
  for (const [facet, list] of Object.entries(s.moved_by)) {
    for (const m of list) {
      rows.push(el("tr", {}, el("td", {}, facet), el("td", {}, m.kind), el("td", {}, m.event_id),
        el("td", {}, ago(m.ts)), el("td", {}, fmt(m.moved, 3))));
    }
  }
  movers.replaceChildren(rows.length
    ? el("table", { class: "movers" },
      el("tr", {}, ["facet", "event", "id", "when", "moved (1 − cos)"].map((h) => el("th", {}, h))), rows)
    : el("div", { class: "muted" }, "no events yet"));
}

function renderRecs(recs) {
  const list = document.getElementById("recs");
  document.getElementById("rec-note").textContent = recs ? `(${recs.items.length}, ranked by the learned ranker)` : "";
  // The coloured strip under each item: each ranker feature's part of its score, in this order.
  // One colour per feature, whatever subset of features an item's parts name.
  const names = [...new Set((recs ? recs.items : []).flatMap((item) => Object.keys(item.score_parts || {})))];
  const colour = Object.fromEntries(names.map((f, n) => [f, PART_COLOURS[n % PART_COLOURS.length]]));
  document.getElementById("parts-legend").replaceChildren(...(names.length ? ["score parts: ", ...names.map((f) =>
    el("span", { class: "legend" }, el("i", { style: `background:${colour[f]}` }), f))] : []));
  if (!recs) {
    list.replaceChildren(el("li", { class: "muted" }, "none yet: no search, click or review to recommend from"));
    return;
  }
  list.replaceChildren(...recs.items.map((item) => {
    const parts = Object.entries(item.score_parts || {});
    const total = parts.reduce((a, [, v]) => a + Math.abs(v), 0) || 1;
    const row = el("li", { class: "rec", "data-item": item.item_id },
      el("span", { class: "title" }, item.title || item.item_id), " ",
      el("span", { class: "muted" }, item.category || ""), " ",
      item.sources.map((src) => el("span", { class: `badge ${src}` }, src)),
      el("div", { class: "muted" },
        `score ${fmt(item.score, 3)} · ranked by ${item.ranked_by || "facet"} · facet match rests on ${item.matched_by}`),
      parts.length ? el("div", { class: "parts", title: parts.map(([k, v]) => `${k} ${fmt(v, 3)}`).join("\n") },
        parts.map(([f, v]) => el("span", { style: `width:${(100 * Math.abs(v) / total).toFixed(1)}%;`
          + `background:${colour[f]};opacity:${v < 0 ? 0.35 : 1}` }))) : "");
    return row;
  }));
}

async function userTick() {
  const user = body.dataset.user;
  if (!user) return;
  const status = document.getElementById("user-status");
  const profile = await api(`/users/${encodeURIComponent(user)}/profile`);
  if (profile.status !== 200) {
    document.getElementById("user-view").hidden = true;
    message(profile.status === 401
      ? "This worker needs its read token to show users: enter it above (INTEREST_STREAM_READ_TOKEN)."
      : profile.body.error || `profile: HTTP ${profile.status}`);
    status.textContent = "";
    return;
  }
  message("");
  const recs = await api(`/users/${encodeURIComponent(user)}/recommendations?k=10`);
  document.getElementById("user-view").hidden = false;
  const p = profile.body;
  const key = `${p.last_event_id}|${p.updated_at}|${JSON.stringify(p.event_counts)}`;
  renderProfile(p);
  renderRecs(recs.status === 200 ? recs.body : null);
  if (lastProfileKey !== null && key !== lastProfileKey) document.querySelectorAll("#user-view .card").forEach(flash);
  lastProfileKey = key;
  status.textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loadKnownUsers() {
  const { status, body: b } = await api("/users?limit=200");
  if (status === 200) {
    document.getElementById("known-users").replaceChildren(...b.users.map((u) => el("option", { value: u })));
    if (!body.dataset.user && b.users.length) {
      document.getElementById("user-status").textContent = `${b.users.length} users on this worker: pick one`;
    }
  }
}

// --- the alerts view ----------------------------------------------------------------------------

function entityChart(summary) {
  // News scores over time (points), the baseline as a band (mean ± std), the trailing window's mean.
  const W = 460, H = 160, pad = 26;
  const news = summary.recent;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "entity-svg" });
  const y = (v) => pad + (1 - (v + 1) / 2) * (H - 2 * pad);
  const t0 = Math.min(...news.map((n) => n.ts), summary.window.start);
  const t1 = Math.max(...news.map((n) => n.ts), summary.window.end);
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad);
  const b = summary.baseline;
  if (b.count > 0) {
    svg.append(svgEl("rect", { x: pad, width: W - 2 * pad, y: y(Math.min(1, b.mean + b.std)),
      height: Math.max(1, y(Math.max(-1, b.mean - b.std)) - y(Math.min(1, b.mean + b.std))), fill: "#eceef3" }));
    svg.append(svgEl("line", { x1: pad, x2: W - pad, y1: y(b.mean), y2: y(b.mean), stroke: "#9aa1b1" }));
  }
  for (const v of [-1, 0, 1]) {
    const label = svgEl("text", { x: 2, y: y(v) + 3 });
    label.textContent = signed(v);
    svg.append(label);
  }
  const w = summary.window;
  if (w.count > 0) {
    svg.append(svgEl("line", { x1: x(w.start), x2: x(w.end), y1: y(w.mean), y2: y(w.mean),
      stroke: "#3146b8", "stroke-width": 2, "stroke-dasharray": "5 3" }));
  }
  for (const n of news) {
    svg.append(svgEl("circle", { cx: x(n.ts), cy: y(n.score), r: 4, fill: n.score >= 0 ? "#5dbb7c" : "#e8776f" }));
  }
  return svg;
}

async function alertsTick() {
  const feed = await api("/alerts");
  const alerts = feed.status === 200 ? feed.body.alerts.slice().reverse() : [];
  if (!body.dataset.entity && alerts.length) body.dataset.entity = alerts[0].entity;
  document.getElementById("alerts").replaceChildren(...(alerts.length ? alerts.map((a) => el("li", {},
    el("a", { onclick: () => { body.dataset.entity = a.entity; tick(); } }, a.entity), ` ${a.rule}: `,
    a.detail, el("span", { class: "muted" }, ` (${ago(a.ts)})`))) : [el("li", { class: "muted" }, "no alerts yet")]));
  const entity = body.dataset.entity;
  if (!entity) return;
  document.getElementById("entity-id").value = entity;
  const res = await api(`/entities/${encodeURIComponent(entity)}`);
  if (res.status !== 200) {
    message(res.body.error || `entity: HTTP ${res.status}`);
    return;
  }
  message("");
  const s = res.body;
  document.getElementById("entity-name").textContent = `${s.entity} ${s.name || ""}`;
  document.getElementById("entity-chart").replaceChildren(entityChart(s));
  document.getElementById("entity-facts").textContent =
    `window: ${s.window.count} news, mean ${signed(s.window.mean)} · baseline ${signed(s.baseline.mean)} ± `
    + `${fmt(s.baseline.std)} over ${s.baseline.count} · ${s.watchers} watching. Chart: dots are news scores, `
    + "the grey band the baseline (mean ± std), the dashed line the trailing window's mean";
  document.getElementById("entity-news").replaceChildren(...s.recent.slice().reverse().map((n) =>
    el("li", {}, `${signed(n.score)} `, n.headline, el("span", { class: "muted" }, ` (${ago(n.ts)})`))));
  document.getElementById("entity-status").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// --- wiring -------------------------------------------------------------------------------------

function pickForm(formId, inputId, key) {
  const form = document.getElementById(formId);
  if (!form) return;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    body.dataset[key] = document.getElementById(inputId).value.trim();
    lastProfileKey = null;
    history.replaceState(null, "", `?${key}=${encodeURIComponent(body.dataset[key])}`);
    tick();
  });
}

let running = false;
async function tick() {
  if (running) return;  // one round of requests at a time
  running = true;
  try {
    await health();
    if (body.dataset.view === "users") await userTick();
    else await alertsTick();
  } finally {
    running = false;
  }
}

pickForm("pick", "user-id", "user");
pickForm("pick-entity", "entity-id", "entity");
if (body.dataset.view === "users") loadKnownUsers();
tick();
setInterval(tick, POLL_MS);
