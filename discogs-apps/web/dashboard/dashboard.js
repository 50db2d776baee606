// discogsography dashboard: draws the snapshots /ws pushes. Plain DOM and SVG, no library,
// no build step. Every value from the server goes through textContent (never innerHTML).
// A source that is down is shown as down with its error, never as zeros.
"use strict";

(() => {
  const CHART_WINDOW_MS = 10 * 60 * 1000;
  const PALETTE = ["#2563eb", "#e11d48", "#059669", "#d97706", "#7c3aed", "#0891b2",
    "#db2777", "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#b91c1c"];

  const state = {
    history: [],        // points: {t, queues: {name: {messages, publish, ack}}, services: {name: rps}}
    last: null,         // the latest snapshot
    receivedAt: 0,      // when it arrived (browser clock)
    retries: 0,
    colors: new Map(),
  };

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "style") node.setAttribute("style", v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  }

  const known = (v) => v !== null && v !== undefined;

  function fmtInt(n) {
    return known(n) ? Math.round(n).toLocaleString("en-US") : "…";
  }

  function fmtRate(n) {
    if (!known(n)) return "…";
    if (n >= 100) return `${fmtInt(n)}/s`;
    return `${n.toFixed(n >= 10 ? 1 : 2)}/s`;
  }

  function fmtBytes(n) {
    if (!known(n)) return "…";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function fmtDuration(seconds) {
    if (!known(seconds)) return "…";
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    const h = Math.floor(s / 3600);
    if (h < 48) return `${h}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function fmtTime(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((x) => String(x).padStart(2, "0")).join(":");
  }

  function ago(iso) {
    if (!iso) return null;
    const base = state.last ? state.last.timestamp_ms : Date.now();
    return `${fmtDuration(Math.max(0, (base - Date.parse(iso)) / 1000))} ago`;
  }

  function colorOf(name) {
    if (!state.colors.has(name)) {
      state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
    }
    return state.colors.get(name);
  }

  function badge(status) {
    return el("span", { class: `badge ${status}`, "data-field": "status" }, status);
  }

  function definitions(pairs) {
    return el("dl", null, pairs.filter(([, v]) => known(v)).map(([k, v, field]) => [
      el("dt", null, k),
      el("dd", field ? { "data-field": field } : null, v),
    ]));
  }

  /// A source that is down: its error, no figures.
  function downNotice(source) {
    return el("div", { class: "error", "data-field": "error" }, `down: ${source.error || "no answer"}`);
  }

  // ------------------------------------------------------------------ connection

  function setConnection(kind, text) {
    const node = $("connection");
    node.className = `badge ${kind}`;
    node.dataset.state = kind;
    node.textContent = text || kind;
  }

  function connect() {
    setConnection("down", "connecting…");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.onopen = () => {
      state.retries = 0;
      setConnection("live", "live");
      loadHistory();
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (message.type === "snapshot") onSnapshot(message);
    };
    ws.onclose = () => {
      const delay = Math.min(1000 * 2 ** state.retries, 10000);
      state.retries += 1;
      setConnection("down", `reconnecting in ${Math.round(delay / 1000)}s`);
      setTimeout(connect, delay);
    };
    ws.onerror = () => ws.close();
  }

  function loadHistory() {
    fetch("/api/history", { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((h) => {
        if (!h || !Array.isArray(h.points)) return;
        const have = new Set(state.history.map((p) => p.t));
        for (const p of h.points) if (!have.has(p.t)) state.history.push(p);
        state.history.sort((a, b) => a.t - b.t);
        trimHistory();
        renderCharts();
      })
      .catch(() => {});
  }

  function trimHistory() {
    if (state.history.length === 0) return;
    const newest = state.history[state.history.length - 1].t;
    while (state.history.length && state.history[0].t < newest - CHART_WINDOW_MS) {
      state.history.shift();
    }
  }

  // Marks the view stale when snapshots stop while the socket looks open.
  setInterval(() => {
    const node = $("connection");
    if (!state.last || node.dataset.state === "down") return;
    const late = Date.now() - state.receivedAt > 3 * (state.last.interval_ms || 2000);
    if (late) setConnection("stale", "stale");
    else if (node.dataset.state === "stale") setConnection("live", "live");
  }, 1000);

  // ------------------------------------------------------------------ snapshot

  function onSnapshot(s) {
    state.last = s;
    state.receivedAt = Date.now();
    if ($("connection").dataset.state !== "live") setConnection("live", "live");
    const queues = {};
    for (const q of (s.rabbitmq.data && s.rabbitmq.data.queues) || []) {
      queues[q.name] = { messages: q.messages, publish: q.publish_rate, ack: q.ack_rate };
    }
    const services = {};
    for (const x of s.services) services[x.name] = x.records_per_second;
    if (!state.history.length || state.history[state.history.length - 1].t < s.timestamp_ms) {
      state.history.push({ t: s.timestamp_ms, queues, services,
        dead_letters: s.rabbitmq.data ? s.rabbitmq.data.total_dead_letters : null });
    }
    trimHistory();

    $("seq").textContent = String(s.seq);
    $("updated").textContent = fmtTime(s.timestamp_ms);
    $("collect-ms").textContent = `${s.collect_ms} ms`;
    renderServices(s.services);
    renderExtraction(s.services);
    renderQueues(s.rabbitmq);
    renderCharts();
    renderDatabases(s);
    renderDeadLetters(s.rabbitmq);
    renderActivity(s.events);
  }

  // ------------------------------------------------------------------ services

  function perKind(details) {
    const records = details && details.records;
    if (!records || typeof records !== "object") return null;
    const rows = Object.entries(records).filter(([, v]) => v && typeof v === "object");
    if (!rows.length) return null;
    const columns = [...new Set(rows.flatMap(([, v]) => Object.keys(v)))];
    return el("table", { "data-field": "per-kind" },
      el("thead", null, el("tr", null, el("th", null, "kind"), columns.map((c) => el("th", null, c)))),
      el("tbody", null, rows.map(([kind, v]) => el("tr", null, el("td", null, kind),
        columns.map((c) => el("td", null, fmtInt(v[c])))))));
  }

  function renderServices(services) {
    replace($("services"), services.map((x) => {
      const answering = x.status !== "down";
      return el("article", { class: `card ${x.status}`, "data-service": x.name },
        el("h3", null, x.name, badge(x.status)),
        answering ? el("div", { class: "task", "data-field": "task" }, x.current_task || x.state || "—") : null,
        x.status === "down" ? el("div", { class: "error", "data-field": "error" }, x.error || "no answer") : null,
        x.status !== "down" && x.error ? el("div", { class: "error" }, x.error) : null,
        x.reason ? el("div", { class: "reason", "data-field": "reason" }, x.reason) : null,
        definitions([
          ["state", answering ? x.state : null],
          ["records", answering && known(x.records) ? fmtInt(x.records) : null, "records"],
          ["records/s", answering && known(x.records_per_second) ? fmtRate(x.records_per_second) : null, "records-rate"],
          ["uptime", answering && known(x.uptime_seconds) ? fmtDuration(x.uptime_seconds) : null],
          ["last seen", x.status === "down" ? (ago(x.last_seen) || "never") : null, "last-seen"],
          ["answer", answering ? `${x.latency_ms} ms` : null],
          ["health", x.url],
        ]),
        answering ? perKind(x.details) : null);
    }));
  }

  function renderExtraction(services) {
    const running = services.filter((x) => x.status !== "down" && x.progress);
    if (!running.length) {
      const ex = services.find((x) => x.name === "extractor");
      const why = !ex ? "no extractor configured"
        : ex.status === "down" ? `extractor down: ${ex.error || "no answer"}`
          : `extractor ${ex.current_task || ex.state || "idle"}: no file in progress`;
      replace($("extraction"), el("div", { class: "empty" }, why));
      return;
    }
    replace($("extraction"), running.map((x) => {
      const p = x.progress;
      const pct = known(p.percent) ? p.percent : null;
      return el("div", { class: "progress", "data-progress": x.name },
        el("div", null,
          el("span", { class: "file", "data-field": "file" }, p.file || "(file)"),
          el("span", { class: "dim" }, `  ${p.step || ""} · ${x.name}`)),
        el("div", { class: "bar" }, el("div", { style: `width:${pct === null ? 0 : pct.toFixed(2)}%` })),
        el("div", { class: "figures" },
          el("span", null, el("b", { "data-field": "bytes-done" }, fmtBytes(p.bytes_done)), " of ",
            el("b", null, known(p.bytes_total) ? fmtBytes(p.bytes_total) : "unknown")),
          el("span", { "data-field": "percent" }, pct === null ? "" : `${pct.toFixed(1)} %`),
          el("span", null, el("b", null, known(p.bytes_per_second) ? `${fmtBytes(p.bytes_per_second)}/s` : "…")),
          el("span", null, el("b", { "data-field": "records-rate" }, fmtRate(x.records_per_second)), " records"),
          el("span", null, "ETA ", el("b", { "data-field": "eta" }, fmtDuration(p.eta_seconds)))));
    }));
  }

  // ------------------------------------------------------------------ queues

  function renderQueues(rabbit) {
    if (rabbit.status !== "up") {
      $("queues-summary").textContent = "";
      replace($("queues"), el("div", { class: "card down" }, el("h3", null, "RabbitMQ", badge("down")), downNotice(rabbit)));
      return;
    }
    const data = rabbit.data;
    $("queues-summary").textContent =
      `${fmtInt(data.total_messages)} waiting · ${fmtInt(data.total_dead_letters)} dead-lettered · RabbitMQ ${data.version || ""}`;
    if (!data.queues.length) {
      replace($("queues"), el("div", { class: "empty" }, "No pipeline queues yet (they appear when a consumer declares them)."));
      return;
    }
    const pending = "figures not computed by the broker yet";
    replace($("queues"), el("table", { "data-table": "queues" },
      el("thead", null, el("tr", null,
        ["queue", "consumers", "messages", "ready", "unacked", "published/s", "delivered/s", "acked/s", "dead letters"]
          .map((h) => el("th", null, h)))),
      el("tbody", null, data.queues.map((q) => el("tr", { "data-queue": q.name, class: q.dead_letters ? "has-dead" : null },
        el("td", { class: "text" }, q.consumer && q.kind ? `${q.consumer} · ${q.kind}` : q.name),
        el("td", { title: known(q.consumers) ? null : pending }, fmtInt(q.consumers)),
        el("td", { "data-field": "messages", title: known(q.messages) ? null : pending }, fmtInt(q.messages)),
        el("td", null, fmtInt(q.ready)),
        el("td", null, fmtInt(q.unacked)),
        el("td", null, fmtRate(q.publish_rate)),
        el("td", null, fmtRate(q.deliver_rate)),
        el("td", null, fmtRate(q.ack_rate)),
        el("td", null, known(q.dead_letters) ? fmtInt(q.dead_letters) : "–"))))));
  }

  // ------------------------------------------------------------------ charts

  function seriesFrom(pick) {
    const names = new Set();
    for (const p of state.history) for (const n of Object.keys(pick(p) || {})) names.add(n);
    return [...names].sort().map((name) => ({
      name,
      points: state.history.map((p) => {
        const group = pick(p) || {};
        return [p.t, name in group ? group[name] : null];
      }),
    }));
  }

  function shortQueue(name) {
    const last = state.last && state.last.rabbitmq.data
      ? state.last.rabbitmq.data.queues.find((q) => q.name === name) : null;
    return last && last.consumer && last.kind ? `${last.consumer} · ${last.kind}` : name;
  }

  function renderCharts() {
    const rabbitDown = state.last && state.last.rabbitmq.status !== "up";
    const depth = seriesFrom((p) => p.queues).map((s) => ({
      name: shortQueue(s.name), color: colorOf(s.name),
      points: s.points.map(([t, v]) => [t, v && known(v.messages) ? v.messages : null]),
    }));
    drawChart($("chart-depth"), $("legend-depth"), depth, rabbitDown ? "RabbitMQ down" : "no queue figures yet");
    const rates = [];
    for (const s of seriesFrom((p) => p.queues)) {
      rates.push({ name: shortQueue(s.name), color: colorOf(s.name),
        points: s.points.map(([t, v]) => [t, v && known(v.ack) ? v.ack : null]) });
      rates.push({ name: null, color: colorOf(s.name), dashed: true,
        points: s.points.map(([t, v]) => [t, v && known(v.publish) ? v.publish : null]) });
    }
    drawChart($("chart-rates"), $("legend-rates"), rates, rabbitDown ? "RabbitMQ down" : "no rates yet");
    const records = seriesFrom((p) => p.services).map((s) => ({
      name: s.name, color: colorOf(`service:${s.name}`), points: s.points,
    })).filter((s) => s.points.some(([, v]) => known(v)));
    drawChart($("chart-records"), $("legend-records"), records, "no service reports records yet");
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function axisNumber(v) {
    if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  /// A line chart of `series` ({name, color, dashed, points: [[t, value|null]]}) over the
  /// chart window; a null value leaves a gap.
  function drawChart(svg, legend, series, emptyText) {
    const width = Math.max(svg.clientWidth || 0, 320);
    const height = Math.max(svg.clientHeight || 0, 160);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const m = { left: 44, right: 10, top: 10, bottom: 22 };
    const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter(known);
    svg.replaceChildren();
    legend.replaceChildren();
    if (!values.length || state.history.length === 0) {
      svg.append(svgEl("text", { class: "nodata", x: width / 2, y: height / 2, "text-anchor": "middle" }, emptyText));
      svg.dataset.points = "0";
      return;
    }
    const tMax = state.history[state.history.length - 1].t;
    const tMin = Math.min(tMax - 60 * 1000, Math.max(state.history[0].t, tMax - CHART_WINDOW_MS));
    const yMax = niceMax(Math.max(...values));
    const x = (t) => m.left + ((t - tMin) / Math.max(1, tMax - tMin)) * (width - m.left - m.right);
    const y = (v) => height - m.bottom - (v / yMax) * (height - m.top - m.bottom);
    for (let i = 0; i <= 4; i += 1) {
      const v = (yMax * i) / 4;
      svg.append(svgEl("line", { class: "grid", x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }));
      svg.append(svgEl("text", { class: "axis", x: m.left - 4, y: y(v) + 3, "text-anchor": "end" }, axisNumber(v)));
    }
    for (let i = 0; i <= 3; i += 1) {
      const t = tMin + ((tMax - tMin) * i) / 3;
      svg.append(svgEl("text", { class: "axis", x: x(t), y: height - 6,
        "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" }, fmtTime(t).slice(0, 5)));
    }
    let drawn = 0;
    for (const s of series) {
      let d = "";
      let pen = false;
      for (const [t, v] of s.points) {
        if (t < tMin || !known(v)) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
        drawn += 1;
      }
      if (d) {
        const path = svgEl("path", { class: `series${s.dashed ? " dashed" : ""}`, d, stroke: s.color });
        if (s.name) path.setAttribute("data-series", s.name);
        svg.append(path);
      }
      if (s.name) legend.append(el("span", { style: `--c:${s.color}` }, s.name));
    }
    svg.dataset.points = String(drawn);
  }

  // ------------------------------------------------------------------ databases

  function renderDatabases(s) {
    const pg = s.postgres;
    const neo = s.neo4j;
    const redis = s.redis;
    const card = (name, source, body) => el("article", { class: `card ${source.status}`, "data-db": name },
      el("h3", null, name, badge(source.status)),
      source.status === "up" ? body(source.data) : downNotice(source),
      source.status === "up" ? null : el("div", { class: "dim" }, `after ${source.latency_ms} ms`));
    replace($("databases"),
      card("PostgreSQL", pg, (d) => [
        definitions([
          ["database", d.database],
          ["size", fmtBytes(d.size_bytes), "size"],
          ["connections", fmtInt(d.connections), "connections"],
          ["version", d.version.split(" ")[0]],
        ]),
        d.tables.length
          ? el("table", null,
            el("thead", null, el("tr", null, ["table", "rows", "size"].map((h) => el("th", null, h)))),
            el("tbody", null, d.tables.map((t) => el("tr", { "data-table": `${t.schema}.${t.name}` },
              el("td", { class: "text" }, `${t.schema}.${t.name}`),
              el("td", { "data-field": "rows" }, known(t.rows_estimate) ? `≈ ${fmtInt(t.rows_estimate)}` : "not analysed"),
              // relpages is 0 until the table's first VACUUM/ANALYZE: unknown, not empty.
              el("td", null, t.size_bytes || !t.rows_estimate ? fmtBytes(t.size_bytes) : "–")))))
          : el("div", { class: "empty" }, "no tables in the watched schemas yet"),
      ]),
      card("Neo4j", neo, (d) => [
        definitions([
          ["nodes", fmtInt(d.total_nodes), "nodes"],
          ["relationships", fmtInt(d.total_relationships), "relationships"],
          ["version", d.version],
        ]),
        el("table", null,
          el("thead", null, el("tr", null, el("th", null, "label"), el("th", null, "nodes"))),
          el("tbody", null, d.labels.slice(0, 20).map((c) => el("tr", { "data-label": c.name },
            el("td", { class: "text" }, c.name), el("td", { "data-field": "count" }, fmtInt(c.count)))))),
        d.relationship_types.length
          ? el("table", null,
            el("thead", null, el("tr", null, el("th", null, "relationship"), el("th", null, "count"))),
            el("tbody", null, d.relationship_types.slice(0, 12).map((c) => el("tr", { "data-type": c.name },
              el("td", { class: "text" }, c.name), el("td", null, fmtInt(c.count))))))
          : null,
      ]),
      card("Redis", redis, (d) => definitions([
        ["memory", fmtBytes(d.used_memory), "memory"],
        ["peak", known(d.used_memory_peak) ? fmtBytes(d.used_memory_peak) : null],
        ["limit", d.maxmemory ? fmtBytes(d.maxmemory) : "none"],
        ["hit rate", known(d.hit_rate) ? `${(d.hit_rate * 100).toFixed(1)} %` : "no lookups yet", "hit-rate"],
        ["hits / misses", `${fmtInt(d.keyspace_hits)} / ${fmtInt(d.keyspace_misses)}`, "hits"],
        ["ops/s", known(d.ops_per_second) ? fmtRate(d.ops_per_second) : null],
        ["keys", fmtInt(d.keys), "keys"],
        ["clients", known(d.connected_clients) ? fmtInt(d.connected_clients) : null],
        ["evicted", known(d.evicted_keys) ? fmtInt(d.evicted_keys) : null],
        ["version", d.version],
      ])));
  }

  // ------------------------------------------------------------------ dead letters

  function renderDeadLetters(rabbit) {
    if (rabbit.status !== "up") {
      $("dead-letters-summary").textContent = "";
      replace($("dead-letters"), el("div", { class: "error" }, `unknown: RabbitMQ down (${rabbit.error || "no answer"})`));
      return;
    }
    const queues = rabbit.data.dead_letters;
    $("dead-letters-summary").textContent = `${fmtInt(rabbit.data.total_dead_letters)} message(s)`;
    if (!queues.length) {
      replace($("dead-letters"), el("div", { class: "empty" }, "No dead-letter queues yet."));
      return;
    }
    replace($("dead-letters"), queues.map((d) => el("div", { class: `dlq${d.messages ? "" : " empty-queue"}`, "data-dlq": d.name },
      el("div", null, el("b", null, d.name), " ", el("span", { class: "dim" }, `from ${d.source}`), " · ",
        el("b", { "data-field": "messages" }, fmtInt(d.messages)), " message(s)"),
      d.note ? el("div", { class: "note" }, d.note) : null,
      d.samples.length
        ? el("table", null,
          el("thead", null, el("tr", null, ["reason", "file", "batch", "deliveries", "body"].map((h) => el("th", null, h)))),
          el("tbody", null, d.samples.map((x) => el("tr", null,
            el("td", { class: "text", "data-field": "reason" }, x.reason || "(no reason given)"),
            el("td", { class: "text" }, x.file || "–"),
            el("td", null, known(x.seq) ? String(x.seq) : "–"),
            el("td", null, known(x.deliveries) ? String(x.deliveries) : "–"),
            el("td", { class: "text" }, el("code", null, x.preview))))))
        : null)));
  }

  // ------------------------------------------------------------------ activity

  function renderActivity(events) {
    const items = [...events].reverse().map((e) => el("li", { class: e.level },
      el("time", { datetime: e.at }, fmtTime(e.at_ms)),
      el("span", { class: "source" }, e.source),
      el("span", { class: "message" }, e.message)));
    if (!items.length) items.push(el("li", null, el("span", { class: "dim" }, "nothing yet")));
    replace($("activity"), items);
  }

  window.addEventListener("resize", () => renderCharts());
  connect();
})();
