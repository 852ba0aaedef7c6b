// CityStream ops centre: live alert feed (SSE), sensor map (SVG, no tiles), drill-down chart, operator actions.
"use strict";
const SEVERITY_RANK = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
const NS = "http://www.w3.org/2000/svg";
const state = { token: "", role: "", alerts: new Map(), sensors: new Map(), pending: new Map(), selected: null,
  stream: null };
const $ = (id) => document.getElementById(id);

function readToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("citystream-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname);  // keep the token out of the visible URL
  }
  return sessionStorage.getItem("citystream-token") || "";
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options,
    headers: { "Authorization": `Bearer ${state.token}`, "Content-Type": "application/json", ...(options.headers || {}) } });
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || { code: String(response.status), message: response.statusText };
    throw Object.assign(new Error(error.message), { code: error.code, status: response.status });
  }
  return body;
}

function toast(text) {
  const box = $("toast"); box.textContent = text; box.classList.remove("hidden");
  clearTimeout(toast.timer); toast.timer = setTimeout(() => box.classList.add("hidden"), 4000);
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeOf(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

// ---- alerts -------------------------------------------------------------------------------------------------
function upsertAlert(event) {
  const known = state.alerts.get(event.alert_id);
  if (known && new Date(known.occurred_at) > new Date(event.occurred_at)) return;
  state.alerts.set(event.alert_id, event);
  state.pending.delete(event.alert_id);
}

function visibleAlerts() {
  const domain = $("filter-domain").value, scope = $("filter-status").value;
  return [...state.alerts.values()]
    .filter((a) => (!domain || a.domain === domain) && (scope === "all" || a.status !== "resolved"))
    .sort((a, b) => new Date(b.occurred_at) - new Date(a.occurred_at));
}

function renderFeed() {
  const feed = $("feed"); feed.replaceChildren();
  const shown = visibleAlerts();
  for (const alert of shown) feed.append(alertCard(alert));
  $("feed-count").textContent = `${shown.length} shown`;
  const critical = [...state.alerts.values()].filter((a) => a.severity === "critical" && a.status === "open");
  const banner = $("critical-banner");
  banner.textContent = `${critical.length} CRITICAL alert${critical.length === 1 ? "" : "s"} open`;
  banner.classList.toggle("hidden", critical.length === 0);
}

function alertCard(alert) {
  const card = el("li", { class: `alert sev-${alert.severity} ${alert.severity} status-${alert.status}`,
    "data-alert-id": alert.alert_id, "data-sensor-id": alert.sensor_id, "data-status": alert.status });
  const top = el("div", { class: "top" });
  top.append(el("span", { class: "sev" }, alert.severity), el("span", { class: "kind" }, alert.kind.replace(/_/g, " ")),
    el("span", { class: "status" }, alert.status), el("span", { class: "when" }, timeOf(alert.occurred_at)));
  const meta = `${alert.sensor_id} · ${alert.domain} · ${alert.explanation.detector} v${alert.explanation.detector_version}`
    + (alert.actor ? ` · by ${alert.actor}` : "") + (alert.assignee ? ` · assigned ${alert.assignee}` : "");
  card.append(top, el("div", { class: "summary" }, alert.explanation.summary), el("div", { class: "meta" }, meta));
  card.addEventListener("click", (e) => { if (e.target.tagName !== "BUTTON") selectSensor(alert.sensor_id); });
  if (["operator", "admin"].includes(state.role) && alert.status !== "resolved") {
    const actions = el("div", { class: "actions" });
    const pending = state.pending.get(alert.alert_id);
    if (alert.status === "open") actions.append(actionButton(alert, "acknowledge", "Acknowledge", pending));
    actions.append(actionButton(alert, "resolve", "Resolve", pending));
    card.append(actions);
  }
  return card;
}

function actionButton(alert, action, label, pending) {
  const button = el("button", { "data-action": action }, pending === action ? `${label}… sent` : label);
  if (pending) button.disabled = true;
  button.addEventListener("click", async () => {
    state.pending.set(alert.alert_id, action); renderFeed();
    try {
      await api(`/v1/alerts/${encodeURIComponent(alert.alert_id)}/actions`, { method: "POST",
        body: JSON.stringify({ action }) });
      toast(`${label} sent for ${alert.sensor_id}; waiting for confirmation`);
    } catch (error) {
      state.pending.delete(alert.alert_id); renderFeed(); toast(`${label} failed: ${error.message}`);
    }
  });
  return button;
}

function connectStream() {
  if (state.stream) state.stream.close();
  // EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed across a network blip.
  const stream = new EventSource(`/v1/live/alerts?access_token=${encodeURIComponent(state.token)}`);
  stream.addEventListener("open", () => setStreamState(true));
  stream.addEventListener("error", () => setStreamState(false));
  stream.addEventListener("position", () => setStreamState(true));
  stream.addEventListener("alert", (message) => {
    const event = JSON.parse(message.data);
    upsertAlert(event); renderFeed(); updateSensorFromAlerts(event.sensor_id);
    if (state.selected === event.sensor_id) loadChart();
  });
  state.stream = stream;
}

function setStreamState(on) {
  const pill = $("stream-state"); pill.textContent = on ? "live" : "reconnecting";
  pill.className = `pill ${on ? "on" : "off"}`; document.body.dataset.stream = on ? "live" : "down";
}

// ---- map ----------------------------------------------------------------------------------------------------
function updateSensorFromAlerts(sensorId) {
  const sensor = state.sensors.get(sensorId);
  if (!sensor) return;
  const open = [...state.alerts.values()].some((a) => a.sensor_id === sensorId && a.status !== "resolved");
  if (open) sensor.status = "alerting";
  else if (sensor.status === "alerting") sensor.status = "ok";
  renderMap();
}

// A step from 1, 2, 2.5 or 5 × 10^n giving roughly `count` intervals over `span`.
function niceStep(span, count) {
  const raw = span / count, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

function degrees(value, step) {
  let decimals = 0;
  while (decimals < 6 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-9) decimals++;
  return value.toFixed(decimals);
}

function renderMap() {
  const map = $("map"); map.replaceChildren();
  const located = [...state.sensors.values()].filter((s) => s.location);
  $("map-count").textContent = `${located.length} located · ${state.sensors.size} known`;
  const width = 800, height = 420, left = 58, right = 16, top = 16, bottom = 34;
  if (!located.length) { map.append(svg("text", { x: 20, y: 30 }, "no sensor with a registered location")); return; }
  const lons = located.map((s) => s.location[0]), lats = located.map((s) => s.location[1]);
  const extent = { w: Math.min(...lons), e: Math.max(...lons), s: Math.min(...lats), n: Math.max(...lats) };
  const midLat = (extent.s + extent.n) / 2;
  // Equirectangular with cos(latitude): good enough at city scale and needs no tiles. 10% margin around the extent.
  const kx = Math.cos((midLat * Math.PI) / 180);
  const spanX = Math.max((extent.e - extent.w) * kx, 2e-3), spanY = Math.max(extent.n - extent.s, 2e-3);
  const scale = Math.min((width - left - right) / (spanX * 1.2), (height - top - bottom) / (spanY * 1.2));
  const cx = (extent.w + extent.e) / 2, cy = midLat;
  const project = ([lon, lat]) => [left + (width - left - right) / 2 + (lon - cx) * kx * scale,
    top + (height - top - bottom) / 2 - (lat - cy) * scale];
  const unproject = (x, y) => [cx + (x - left - (width - left - right) / 2) / (kx * scale),
    cy - (y - top - (height - top - bottom) / 2) / scale];
  const [west, north] = unproject(left, top), [east, south] = unproject(width - right, height - bottom);
  // Latitude/longitude graticule labelled on the frame: steps chosen so labels stay ~80 px (lon) / 45 px (lat) apart.
  const lonStep = niceStep(east - west, (width - left - right) / 80), latStep = niceStep(north - south, (height - top - bottom) / 45);
  const graticule = svg("g", { class: "graticule" });
  for (let i = Math.ceil(west / lonStep); i * lonStep <= east; i++) {
    const lon = i * lonStep, [x] = project([lon, cy]);
    graticule.append(svg("line", { class: "grid", x1: x, x2: x, y1: top, y2: height - bottom }),
      svg("text", { class: "tick", x, y: height - bottom + 14, "text-anchor": "middle" }, `${degrees(lon, lonStep)}°E`));
  }
  for (let i = Math.ceil(south / latStep); i * latStep <= north; i++) {
    const lat = i * latStep, [, y] = project([cx, lat]);
    graticule.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }),
      svg("text", { class: "tick", x: left - 6, y: y + 3, "text-anchor": "end" }, `${degrees(lat, latStep)}°N`));
  }
  map.append(graticule, svg("rect", { class: "frame", x: left, y: top, width: width - left - right,
    height: height - top - bottom }));
  // The city's sensor extent, with its size, so an operator sees the scale of the area at a glance.
  const [ex0, ey0] = project([extent.w, extent.n]), [ex1, ey1] = project([extent.e, extent.s]);
  const kmX = (extent.e - extent.w) * kx * 111.32, kmY = (extent.n - extent.s) * 111.32;
  map.append(svg("rect", { class: "extent", x: ex0 - 8, y: ey0 - 8, width: ex1 - ex0 + 16, height: ey1 - ey0 + 16 }),
    svg("text", { class: "extent-label", x: ex0 - 8, y: ey0 - 12 },
      `sensor extent ${kmX.toFixed(1)} × ${kmY.toFixed(1)} km`));
  // Scale bar (a round number of km close to a fifth of the width) and a north arrow.
  const kmPerPx = 111.32 / scale, barKm = niceStep(kmPerPx * (width - left - right) / 5, 1);
  const barPx = barKm / kmPerPx, bx = width - right - barPx - 12, by = height - bottom - 14;
  map.append(svg("rect", { class: "scale-bg", x: bx - 8, y: by - 16, width: barPx + 16, height: 26, rx: 3 }),
    svg("line", { class: "scale", x1: bx, x2: bx + barPx, y1: by, y2: by }),
    svg("line", { class: "scale", x1: bx, x2: bx, y1: by - 4, y2: by + 4 }),
    svg("line", { class: "scale", x1: bx + barPx, x2: bx + barPx, y1: by - 4, y2: by + 4 }),
    svg("text", { class: "scale-label", x: bx + barPx / 2, y: by - 5, "text-anchor": "middle" },
      barKm >= 1 ? `${barKm} km` : `${barKm * 1000} m`),
    svg("path", { class: "north", d: `M${width - right - 18},${top + 34} l8,-22 l8,22 l-8,-6 z` }),
    svg("text", { class: "scale-label", x: width - right - 10, y: top + 46, "text-anchor": "middle" }, "N"));
  const order = { ok: 0, silent: 1, rejected: 2, alerting: 3 };
  for (const sensor of located.sort((a, b) => order[a.status] - order[b.status])) {
    const [x, y] = project(sensor.location);
    const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: sensor.status === "alerting" ? 8 : 6,
      class: `${sensor.status}${state.selected === sensor.sensor_id ? " selected" : ""}`,
      "data-sensor-id": sensor.sensor_id });
    dot.append(svg("title", {}, `${sensor.sensor_id} (${sensor.domain || "?"}): ${sensor.status}`));
    dot.addEventListener("click", () => selectSensor(sensor.sensor_id));
    map.append(dot);
    if (sensor.status === "alerting" || state.selected === sensor.sensor_id) {
      map.append(svg("text", { class: "sensor-label", x: x + 11, y: y + 4 }, sensor.sensor_id));
    }
  }
}

async function loadSensors() {
  const page = await api("/v1/sensors?limit=500");
  state.sensors = new Map(page.items.map((s) => [s.sensor_id, s]));
  for (const sensor of page.items) for (const alert of sensor.open_alerts) upsertAlert(alert);
  renderMap(); renderFeed();
}

// ---- drill-down ---------------------------------------------------------------------------------------------
function selectSensor(sensorId) {
  state.selected = sensorId;
  const sensor = state.sensors.get(sensorId);
  const metrics = Object.keys((sensor && sensor.latest) || {});
  const select = $("drill-metric"); select.replaceChildren(...metrics.map((m) => el("option", {}, m)));
  $("drill-title").textContent = sensorId;
  renderMap(); loadChart();
}

function clock(date) { return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }); }

async function loadChart() {
  const sensorId = state.selected, metric = $("drill-metric").value, chart = $("chart");
  if (!sensorId) return;
  chart.replaceChildren();
  if (!metric) { chart.append(svg("text", { x: 20, y: 30 }, "no readings stored for this sensor yet")); return; }
  const hours = Number($("drill-range").value), end = new Date(), start = new Date(end - hours * 3600e3);
  const bucket = hours <= 1 ? "1m" : hours <= 6 ? "5m" : "15m";
  const query = new URLSearchParams({ metric, bucket, agg: "avg,max", start: start.toISOString(), end: end.toISOString() });
  const series = await api(`/v1/sensors/${encodeURIComponent(sensorId)}/series?${query}`);
  const marks = [...state.alerts.values()].filter((a) => a.sensor_id === sensorId && new Date(a.opened_at) >= start)
    .sort((a, b) => new Date(a.opened_at) - new Date(b.opened_at));
  const width = 800, height = 260, left = 56, right = 16, bottom = 24;
  const labelRows = Math.min(marks.length, 3), top = 12 + labelRows * 13;
  const values = series.points.map((p) => p.avg);
  const yStep = niceStep(Math.max(Math.max(...values, 1) - Math.min(...values, 0), 1e-9), 4);
  const lo = Math.floor(Math.min(...values, 0) / yStep) * yStep, hi = Math.ceil(Math.max(...values, 1) / yStep) * yStep;
  const x = (t) => left + ((new Date(t) - start) / (end - start)) * (width - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo || 1)) * (height - top - bottom);
  const decimals = yStep < 1 ? Math.ceil(-Math.log10(yStep)) : 0;
  for (let v = lo; v <= hi + yStep / 2; v += yStep) {
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      svg("text", { x: left - 6, y: y(v) + 3, "text-anchor": "end" }, v.toFixed(decimals)));
  }
  const tickHours = hours <= 1 ? 0.25 : hours <= 6 ? 1 : 4;
  const firstTick = Math.ceil(start / (tickHours * 3600e3)) * tickHours * 3600e3;
  for (let t = firstTick; t <= end; t += tickHours * 3600e3) {
    chart.append(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: height - bottom }),
      svg("text", { x: x(t), y: height - 8, "text-anchor": "middle" }, clock(new Date(t))));
  }
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }),
    svg("text", { class: "unit", x: left + 6, y: top + 10 }, `${metric}, average per ${bucket}`));
  if (values.length) {
    const path = series.points.map((p, i) => `${i ? "L" : "M"}${x(p.bucket_start).toFixed(1)},${y(p.avg).toFixed(1)}`);
    chart.append(svg("path", { class: "series", d: path.join(" ") }));
  } else {
    chart.append(svg("text", { x: left + 10, y: top + 30 }, `no ${metric} readings in this range`));
  }
  // Alert marks: labels in up to three rows above the plot, each row keeping its labels apart; near the right
  // edge a label ends at its mark instead of running off the chart.
  const rowEnds = Array(Math.max(labelRows, 1)).fill(-Infinity);
  for (const alert of marks) {
    const ax = x(alert.opened_at), text = `${alert.kind.replace(/_/g, " ")} · ${alert.status}`;
    const textWidth = text.length * 5.6 + 6, anchorEnd = ax + textWidth > width - right;
    const from = anchorEnd ? ax - textWidth : ax;
    let row = rowEnds.findIndex((endX) => endX + 12 < from);  // 12 px apart, or the next row
    if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
    rowEnds[row] = from + textWidth;
    const colour = getComputedStyle(document.documentElement).getPropertyValue(`--${alert.severity}`);
    chart.append(svg("line", { class: "mark", x1: ax.toFixed(1), x2: ax.toFixed(1), y1: 10 + row * 13, y2: height - bottom,
      stroke: colour }),
      svg("text", { class: "mark-label", x: (anchorEnd ? ax - 3 : ax + 3).toFixed(1), y: 20 + row * 13,
        "text-anchor": anchorEnd ? "end" : "start", style: `fill:${colour}` }, text));
  }
}

// ---- start --------------------------------------------------------------------------------------------------
async function start() {
  state.token = readToken();
  if (!state.token) { $("who").textContent = "enter a token to start"; return; }
  try {
    const me = await api("/v1/me");
    state.role = me.role; $("who").textContent = `${me.name} (${me.role})`;
  } catch (error) { $("who").textContent = `sign-in failed: ${error.message}`; return; }
  connectStream();
  const page = await api("/v1/alerts?status=open,acknowledged&limit=200");
  for (const alert of page.items) upsertAlert(alert);
  renderFeed();
  await loadSensors();
  setInterval(() => loadSensors().catch((e) => toast(`sensor refresh failed: ${e.message}`)), 30000);
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault(); sessionStorage.setItem("citystream-token", $("token").value.trim()); start();
});
for (const id of ["filter-domain", "filter-status"]) $(id).addEventListener("change", renderFeed);
for (const id of ["drill-metric", "drill-range"]) $(id).addEventListener("change", loadChart);
start();
