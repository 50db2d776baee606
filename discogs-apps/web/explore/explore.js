// The explore page: autocomplete, a D3 force graph (categories expand on click, "load
// more" pages), an info panel, Plotly trends with comparison, a path finder and full-text
// search with facets. Everything comes from the JSON API of the same binary (/api/*).
"use strict";

const PAGE = 30;
const $ = (sel) => document.querySelector(sel);
const state = { center: null, other: null, pathTo: null };

async function api(path) {
  const res = await fetch(path);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const refParams = (e, prefix = "") => (e.type === "genre" || e.type === "style") ? { [prefix + "name"]: e.id } : { [prefix + "id"]: e.id };

// ---- Autocomplete -----------------------------------------------------------------
function autocomplete(input, typeSelect, list, onPick) {
  let timer = null, seq = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (q.length < 2) { list.hidden = true; return; }
    timer = setTimeout(async () => {
      const mine = ++seq;
      try {
        const r = await api("/api/autocomplete?" + qs({ q, type: typeSelect.value, limit: 10 }));
        if (mine !== seq) return;
        list.innerHTML = r.results.map((h) =>
          `<li data-id="${esc(h.id)}" data-type="${esc(h.type)}" data-name="${esc(h.name)}">${esc(h.name)}<small>${esc(h.type)} ${typeof h.id === "number" ? "#" + h.id : ""}</small></li>`).join("")
          || "<li class=\"none\">no match</li>";
        list.hidden = false;
      } catch (e) { list.innerHTML = `<li class="error">${esc(e.message)}</li>`; list.hidden = false; }
    }, 250);
  });
  list.addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-id]");
    if (!li) return;
    list.hidden = true;
    input.value = li.dataset.name;
    const id = li.dataset.type === "genre" || li.dataset.type === "style" ? li.dataset.id : Number(li.dataset.id);
    onPick({ id, type: li.dataset.type, name: li.dataset.name });
  });
  document.addEventListener("click", (ev) => { if (!list.contains(ev.target) && ev.target !== input) list.hidden = true; });
}

// ---- Graph --------------------------------------------------------------------------
const graph = { nodes: [], links: [], byKey: new Map(), sim: null };
const svg = d3.select("#graph");
const zoomLayer = svg.append("g");
svg.call(d3.zoom().scaleExtent([0.2, 4]).on("zoom", (ev) => zoomLayer.attr("transform", ev.transform)));
const linkLayer = zoomLayer.append("g"), nodeLayer = zoomLayer.append("g");

function addNode(n, parentKey) {
  if (!graph.byKey.has(n.key)) {
    const parent = parentKey && graph.byKey.get(parentKey);
    if (parent) { n.x = parent.x + (Math.random() - 0.5) * 40; n.y = parent.y + (Math.random() - 0.5) * 40; }
    graph.nodes.push(n);
    graph.byKey.set(n.key, n);
  }
  if (parentKey) graph.links.push({ source: parentKey, target: n.key });
  return graph.byKey.get(n.key);
}
function removeNode(key) {
  graph.nodes = graph.nodes.filter((n) => n.key !== key);
  graph.links = graph.links.filter((l) => (l.source.key || l.source) !== key && (l.target.key || l.target) !== key);
  graph.byKey.delete(key);
}

function render() {
  const { width, height } = svg.node().getBoundingClientRect();
  const links = linkLayer.selectAll("line").data(graph.links, (l) => (l.source.key || l.source) + ">" + (l.target.key || l.target));
  links.exit().remove();
  const allLinks = links.enter().append("line").attr("class", "link").merge(links);
  const nodes = nodeLayer.selectAll("g.node").data(graph.nodes, (n) => n.key);
  nodes.exit().remove();
  const entered = nodes.enter().append("g")
    .attr("class", (n) => "node " + n.role)
    .attr("data-key", (n) => n.key).attr("data-type", (n) => n.type || "")
    .attr("data-category", (n) => n.category || "")
    .on("click", (ev, n) => onNodeClick(n))
    .call(d3.drag()
      .on("start", (ev, n) => { if (!ev.active) graph.sim.alphaTarget(0.3).restart(); n.fx = n.x; n.fy = n.y; })
      .on("drag", (ev, n) => { n.fx = ev.x; n.fy = ev.y; })
      .on("end", (ev, n) => { if (!ev.active) graph.sim.alphaTarget(0); n.fx = null; n.fy = null; }));
  entered.append("circle").attr("r", (n) => n.role === "center" ? 16 : n.role === "category" ? 12 : 7);
  entered.append("text").attr("dx", 12).attr("dy", 4);
  const allNodes = entered.merge(nodes);
  allNodes.select("text").text((n) => n.label);
  if (!graph.sim) {
    graph.sim = d3.forceSimulation()
      .force("link", d3.forceLink().id((n) => n.key).distance((l) => l.target.role === "category" ? 90 : 55))
      .force("charge", d3.forceManyBody().strength(-160))
      .force("center", d3.forceCenter(width / 2, height / 2))
      .force("collide", d3.forceCollide(14));
  }
  graph.sim.nodes(graph.nodes).on("tick", () => {
    allLinks.attr("x1", (l) => l.source.x).attr("y1", (l) => l.source.y).attr("x2", (l) => l.target.x).attr("y2", (l) => l.target.y);
    allNodes.attr("transform", (n) => `translate(${n.x},${n.y})`);
  });
  graph.sim.force("link").links(graph.links);
  graph.sim.alpha(0.8).restart();
  $("#graph-hint").hidden = graph.nodes.length > 0;
}

async function explore(entity) {
  const r = await api("/api/explore?" + qs({ type: entity.type, ...refParams(entity) }));
  state.center = { id: r.center.id, type: r.center.type, name: r.center.name };
  graph.nodes = []; graph.links = []; graph.byKey.clear();
  const key = `${r.center.type}:${r.center.id}`;
  addNode({ key, role: "center", type: r.center.type, id: r.center.id, label: r.center.name });
  for (const c of r.categories) {
    addNode({ key: "cat:" + c.category, role: "category", category: c.category, name: c.name, label: `${c.name} (${c.count})`, count: c.count, loaded: 0, children: [] }, key);
  }
  render();
  if (timeline.year != null) await applyYear();
  $("#trend-main").textContent = state.center.name;
  $("#path-from").textContent = state.center.name;
  $("#path-go").disabled = !state.pathTo;
  showInfo(state.center);
  if ($("#pane-trends").classList.contains("active")) drawTrends();
}

// One page of a category (with the timeline's year cut-off when one is set).
function fetchPage(cat, limit, offset) {
  const c = state.center;
  return api("/api/expand?" + qs({ type: c.type, ...refParams(c), category: cat.category, limit, offset, before_year: timeline.year }));
}

async function expand(cat) {
  const r = await fetchPage(cat, PAGE, cat.loaded);
  showPage(cat, r);
  render();
}

function showPage(cat, r) {
  removeNode("more:" + cat.category);
  for (const ch of r.children) {
    const id = ch.id ?? ch.name;
    const extra = ch.year ? ` (${ch.year})` : ch.release_count ? ` ×${ch.release_count}` : ch.relation ? ` · ${ch.relation}` : "";
    const key = `${ch.type}:${id}`;
    addNode({ key, role: "entity", type: ch.type, id, label: (ch.name || "?") + extra }, cat.key);
    cat.children.push(key);
  }
  cat.loaded = r.offset + r.children.length;
  if (r.has_more) {
    addNode({ key: "more:" + cat.category, role: "more", category: cat.category, label: `Load ${Math.min(PAGE, r.total - cat.loaded)} more…` }, cat.key);
  }
}

// ---- Timeline scrubber: the graph as it was up to a year ------------------------------
// The slider sets `before_year` on every expansion; moving it reloads the expanded
// categories (first page) and the counts of the others, so nodes appear and disappear as
// the years pass. ▶ plays it at 1 or 10 years a second.
const timeline = { year: null, min: null, max: null, seq: 0, timer: null };

async function applyYear() {
  const mine = ++timeline.seq;
  const cats = graph.nodes.filter((n) => n.role === "category");
  const pages = await Promise.all(cats.map((cat) => fetchPage(cat, cat.loaded > 0 ? PAGE : 1, 0)));
  if (mine !== timeline.seq) return; // a later move won
  cats.forEach((cat, i) => {
    const r = pages[i];
    const suffix = timeline.year == null ? "" : ` ≤ ${timeline.year}`;
    cat.label = `${cat.name} (${r.total}${suffix})`;
    if (cat.loaded > 0) {
      for (const key of cat.children) removeNode(key);
      cat.children = [];
      cat.loaded = 0;
      showPage(cat, r);
    }
  });
  render();
}

function setYear(year) {
  timeline.year = year;
  $("#year-label").textContent = year == null ? "all years" : `up to ${year}`;
  if (year != null) $("#year").value = year;
  $("#timeline").dataset.year = year ?? "";
  if (state.center) applyYear().catch(showError);
}

function stopPlaying() {
  clearInterval(timeline.timer);
  timeline.timer = null;
}

function play(step) {
  stopPlaying();
  let year = timeline.year == null || timeline.year >= timeline.max ? timeline.min : timeline.year;
  setYear(year);
  timeline.timer = setInterval(() => {
    year = Math.min(timeline.max, year + step);
    setYear(year);
    if (year >= timeline.max) stopPlaying();
  }, 1000);
}

async function initTimeline() {
  try {
    const r = await api("/api/explore/year-range");
    if (r.min_year == null || r.max_year == null) return;
    Object.assign(timeline, { min: r.min_year, max: r.max_year });
    const slider = $("#year");
    slider.min = r.min_year; slider.max = r.max_year; slider.value = r.max_year;
    $("#year-min").textContent = r.min_year; $("#year-max").textContent = r.max_year;
    $("#timeline").hidden = false;
  } catch (e) { /* no years known: no scrubber */ }
}
$("#year").addEventListener("input", (ev) => { stopPlaying(); setYear(Number(ev.target.value)); });
$("#tl-play1").addEventListener("click", () => play(1));
$("#tl-play10").addEventListener("click", () => play(10));
$("#tl-stop").addEventListener("click", stopPlaying);
$("#tl-all").addEventListener("click", () => { stopPlaying(); setYear(null); });

function onNodeClick(n) {
  if (n.role === "category") { if (n.loaded === 0) expand(n).catch(showError); return; }
  if (n.role === "more") { expand(graph.byKey.get("cat:" + n.category)).catch(showError); return; }
  showInfo({ id: n.id, type: n.type, name: n.label });
}

async function showInfo(e) {
  const body = $("#info-body");
  body.textContent = "Loading…";
  try {
    const d = await api(`/api/node/${encodeURIComponent(e.id)}?type=${e.type}`);
    const list = (xs) => (xs || []).map((x) => `<li>${esc(typeof x === "string" ? x : x.name)}</li>`).join("");
    const rows = [];
    for (const k of ["year", "country", "released", "release_count", "artist_count", "label_count", "first_year"]) if (d[k] != null) rows.push(`<dt>${k.replace("_", " ")}</dt><dd>${esc(d[k])}</dd>`);
    for (const k of ["artists", "labels", "groups", "members", "aliases", "genres", "styles", "sublabels"]) if (d[k] && d[k].length) rows.push(`<dt>${k}</dt><dd><ul>${list(d[k].slice(0, 25))}</ul></dd>`);
    const canCenter = ["artist", "label", "genre", "style"].includes(d.type);
    body.innerHTML = `<h3 data-info-id="${esc(d.id)}">${esc(d.name)}</h3><p>${esc(d.type)}${typeof d.id === "number" ? " #" + d.id : ""}</p><dl>${rows.join("")}</dl>`
      + recordHtml(d.record)
      + (canCenter ? `<button id="info-center">Explore from here</button> <button id="info-path">Path to here</button>` : "");
    if (canCenter) {
      $("#info-center").onclick = () => explore({ id: d.id, type: d.type }).catch(showError);
      $("#info-path").onclick = () => { state.pathTo = { id: d.id, type: d.type, name: d.name }; $("#path-q").value = d.name; $("#path-go").disabled = !state.center; switchPane("path"); };
    }
  } catch (err) { body.innerHTML = `<p class="error">${esc(err.message)}</p>`; }
}

// The record the tableinator stored (PostgreSQL): profile, real name, links, track list…
function recordHtml(rec) {
  if (!rec) return "";
  const rows = [];
  const text = (k, label, max = 800) => {
    if (rec[k] == null || rec[k] === "") return;
    const v = String(rec[k]);
    rows.push(`<dt>${label}</dt><dd class="rec-${k}">${esc(v.length > max ? v.slice(0, max) + "…" : v)}</dd>`);
  };
  const items = (k, label, show, most = 30) => {
    const xs = rec[k];
    if (!Array.isArray(xs) || !xs.length) return;
    const more = xs.length > most ? `<li>… ${xs.length - most} more</li>` : "";
    rows.push(`<dt>${label}</dt><dd><ul class="rec-${k}">${xs.slice(0, most).map((x) => `<li>${show(x)}</li>`).join("")}${more}</ul></dd>`);
  };
  const link = (u) => /^https?:\/\//i.test(u) ? `<a href="${esc(u)}" rel="noopener noreferrer" target="_blank">${esc(u)}</a>` : esc(u);
  const duration = (t) => t.duration ? ` <small>${esc(t.duration)}</small>` : "";
  text("real_name", "real name");
  text("profile", "profile");
  text("contact_info", "contact");
  text("status", "status");
  text("country", "country");
  text("released", "released");
  text("year", "year");
  if (rec.main_release != null) rows.push(`<dt>main release</dt><dd class="rec-main_release">#${esc(rec.main_release)}</dd>`);
  if (rec.parent_label) rows.push(`<dt>parent label</dt><dd>${esc(rec.parent_label.name)}</dd>`);
  items("formats", "formats", (f) => esc([f.qty && f.qty !== "1" ? f.qty + "×" : "", f.name, ...(f.descriptions || []), f.text].filter(Boolean).join(" ")));
  items("tracklist", "tracks", (t) => `${t.position ? `<b>${esc(t.position)}</b> ` : ""}${esc(t.title)}${duration(t)}`, 60);
  items("urls", "links", link, 10);
  items("name_variations", "name variations", esc, 15);
  text("notes", "notes", 400);
  text("data_quality", "data quality");
  return rows.length ? `<h4>Record</h4><dl class="record">${rows.join("")}</dl>` : "";
}

function showError(e) { $("#info-body").innerHTML = `<p class="error">${esc(e.message)}</p>`; }

// ---- Trends -------------------------------------------------------------------------
async function drawTrends() {
  if (!state.center) return;
  const items = [state.center, state.other].filter(Boolean);
  const series = await Promise.all(items.map((e) => api("/api/trends?" + qs({ type: e.type, ...refParams(e) }))));
  const traces = series.map((s) => ({ x: s.data.map((p) => p.year), y: s.data.map((p) => p.count), name: `${s.name} (${s.type})`, type: "scatter", mode: "lines+markers" }));
  Plotly.react("trends-chart", traces, {
    paper_bgcolor: "#0f1420", plot_bgcolor: "#0b1019", font: { color: "#e6eaf2" },
    title: { text: "Releases per year" }, xaxis: { title: { text: "year" } }, yaxis: { title: { text: "releases" } }, margin: { t: 50 },
  }, { responsive: true, displaylogo: false });
}

// ---- Path ---------------------------------------------------------------------------
async function findPath() {
  const a = state.center, b = state.pathTo;
  if (!a || !b) return;
  $("#path-status").textContent = "Searching…";
  try {
    const r = await api("/api/path?" + qs({ from_type: a.type, ...refParams(a, "from_"), to_type: b.type, ...refParams(b, "to_"), max_depth: $("#path-depth").value }));
    $("#path-status").textContent = r.found ? `Connected in ${r.length} step${r.length === 1 ? "" : "s"}.` : "No path within that depth.";
    $("#path-steps").innerHTML = r.path.map((n) => `<li class="path-step" data-type="${esc(n.type)}">${n.rel ? `<span class="rel">—${esc(n.rel)}—</span> ` : ""}${esc(n.name)} <small>(${esc(n.type)})</small></li>`).join("");
    drawPath(r.path);
  } catch (e) { $("#path-status").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
}

function drawPath(path) {
  const ps = d3.select("#path-graph");
  ps.selectAll("*").remove();
  if (!path.length) return;
  const { width, height } = ps.node().getBoundingClientRect();
  const step = path.length > 1 ? (width - 120) / (path.length - 1) : 0;
  const pts = path.map((n, i) => ({ ...n, x: 60 + i * step, y: height / 2 + (i % 2 ? -40 : 40) }));
  ps.selectAll("line").data(pts.slice(1)).enter().append("line").attr("class", "link")
    .attr("x1", (d, i) => pts[i].x).attr("y1", (d, i) => pts[i].y).attr("x2", (d) => d.x).attr("y2", (d) => d.y);
  ps.selectAll("text.rel").data(pts.slice(1)).enter().append("text").attr("class", "rel").attr("fill", "#8b95a9").attr("font-size", 11)
    .attr("x", (d, i) => (pts[i].x + d.x) / 2).attr("y", (d, i) => (pts[i].y + d.y) / 2 - 4).attr("text-anchor", "middle").text((d) => d.rel);
  const g = ps.selectAll("g.node").data(pts).enter().append("g").attr("class", "node path-node").attr("data-type", (d) => d.type)
    .attr("transform", (d) => `translate(${d.x},${d.y})`);
  g.append("circle").attr("r", 10);
  g.append("text").attr("dy", 24).attr("text-anchor", "middle").text((d) => d.name.length > 28 ? d.name.slice(0, 27) + "…" : d.name);
}

// ---- Search -------------------------------------------------------------------------
const search = { q: "", types: [], genres: [], decade: null, offset: 0 };
async function runSearch() {
  const p = { q: search.q, types: search.types.join(","), genres: search.genres.join(","), limit: 20, offset: search.offset };
  if (search.decade != null) { p.year_min = search.decade; p.year_max = search.decade + 9; }
  try {
    const r = await api("/api/search?" + qs(p));
    $("#search-summary").textContent = `${r.total} result${r.total === 1 ? "" : "s"} for “${r.query}”`;
    // Highlights: the text is escaped, then only the <mark> tags the server adds are restored.
    const hl = (s) => esc(s).replaceAll("&lt;mark&gt;", "<mark>").replaceAll("&lt;/mark&gt;", "</mark>");
    $("#results").innerHTML = r.results.map((x) => `<li class="result" data-type="${esc(x.type)}" data-id="${esc(x.id)}"><span class="kind">${esc(x.type)}</span>${hl(x.highlight)}${x.metadata.year ? ` <small>${x.metadata.year}</small>` : ""}${x.metadata.genres ? ` <small>${esc(x.metadata.genres.join(", "))}</small>` : ""}</li>`).join("");
    const box = (group, value, label, checked) => `<label><input type="checkbox" data-group="${group}" value="${esc(value)}" ${checked ? "checked" : ""}> ${esc(label)}</label>`;
    $("#facets").innerHTML = "<h3>Type</h3>" + Object.entries(r.facets.type).map(([k, n]) => box("types", k, `${k} (${n})`, search.types.includes(k))).join("")
      + "<h3>Genre</h3>" + r.facets.genre.map((g) => box("genres", g.name, `${g.name} (${g.count})`, search.genres.includes(g.name))).join("")
      + "<h3>Decade</h3>" + r.facets.decade.map((d) => box("decade", d.decade, `${d.decade}s (${d.count})`, search.decade === d.decade)).join("");
    $("#search-pages").innerHTML = (search.offset > 0 ? `<button id="prev">Previous</button>` : "") + (r.pagination.has_more ? ` <button id="next">Next</button>` : "");
    if ($("#prev")) $("#prev").onclick = () => { search.offset = Math.max(0, search.offset - 20); runSearch(); };
    if ($("#next")) $("#next").onclick = () => { search.offset += 20; runSearch(); };
  } catch (e) { $("#search-summary").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
}
$("#facets").addEventListener("change", (ev) => {
  const box = ev.target, group = box.dataset.group;
  if (group === "decade") search.decade = box.checked ? Number(box.value) : null;
  else search[group] = box.checked ? [...search[group], box.value] : search[group].filter((v) => v !== box.value);
  search.offset = 0;
  runSearch();
});
$("#results").addEventListener("click", (ev) => {
  const li = ev.target.closest("li.result");
  if (li) showInfo({ id: Number(li.dataset.id), type: li.dataset.type });
});
$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  Object.assign(search, { q: $("#search-q").value.trim(), types: [], genres: [], decade: null, offset: 0 });
  if (search.q.length >= 2) runSearch();
});

// ---- Tabs and wiring ----------------------------------------------------------------
function switchPane(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.pane === name));
  document.querySelectorAll(".pane").forEach((p) => p.classList.toggle("active", p.id === "pane-" + name));
  if (name === "trends") drawTrends().catch((e) => { $("#trends-chart").innerHTML = `<p class="error">${esc(e.message)}</p>`; });
}
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => switchPane(b.dataset.pane)));
autocomplete($("#q"), $("#q-type"), $("#suggestions"), (e) => { switchPane("explore"); explore(e).catch(showError); });
autocomplete($("#trend-q"), $("#trend-type"), $("#trend-suggestions"), (e) => { state.other = e; drawTrends().catch(() => {}); });
autocomplete($("#path-q"), $("#path-type"), $("#path-suggestions"), (e) => { state.pathTo = e; $("#path-go").disabled = !state.center; });
$("#path-go").addEventListener("click", findPath);
initTimeline();
