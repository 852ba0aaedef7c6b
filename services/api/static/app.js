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

function timeOf(iso) { return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }); }

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
    "data-alert-id": alert.alert_id, "data-status": alert.status });
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

function renderMap() {
  const map = $("map"); map.replaceChildren();
  const located = [...state.sensors.values()].filter((s) => s.location);
  $("map-count").textContent = `${located.length} located · ${state.sensors.size} known`;
  const width = 800, height = 420, pad = 30;
  for (let i = 1; i < 6; i++) {
    map.append(svg("line", { class: "grid", x1: 0, x2: width, y1: (height * i) / 6, y2: (height * i) / 6 }));
    map.append(svg("line", { class: "grid", y1: 0, y2: height, x1: (width * i) / 6, x2: (width * i) / 6 }));
  }
  if (!located.length) { map.append(svg("text", { x: 20, y: 30 }, "no sensor with a registered location")); return; }
  const lons = located.map((s) => s.location[0]), lats = located.map((s) => s.location[1]);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  // Equirectangular with cos(latitude): good enough at city scale and needs no tiles.
  const kx = Math.cos((midLat * Math.PI) / 180);
  const spanX = Math.max((Math.max(...lons) - Math.min(...lons)) * kx, 1e-4);
  const spanY = Math.max(Math.max(...lats) - Math.min(...lats), 1e-4);
  const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  const x0 = Math.min(...lons), y0 = Math.max(...lats);
  const project = ([lon, lat]) => [pad + (lon - x0) * kx * scale, pad + (y0 - lat) * scale];
  const order = { ok: 0, silent: 1, rejected: 2, alerting: 3 };
  for (const sensor of located.sort((a, b) => order[a.status] - order[b.status])) {
    const [x, y] = project(sensor.location);
    const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: sensor.status === "alerting" ? 8 : 6,
      class: `${sensor.status}${state.selected === sensor.sensor_id ? " selected" : ""}`,
      "data-sensor-id": sensor.sensor_id });
    dot.append(svg("title", {}, `${sensor.sensor_id} (${sensor.domain || "?"}): ${sensor.status}`));
    dot.addEventListener("click", () => selectSensor(sensor.sensor_id));
    map.append(dot);
  }
  map.append(svg("text", { x: 8, y: height - 8 }, `${x0.toFixed(3)}°E ${y0.toFixed(3)}°N ↘`));
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

async function loadChart() {
  const sensorId = state.selected, metric = $("drill-metric").value, chart = $("chart");
  if (!sensorId) return;
  chart.replaceChildren();
  if (!metric) { chart.append(svg("text", { x: 20, y: 30 }, "no readings stored for this sensor yet")); return; }
  const hours = Number($("drill-range").value), end = new Date(), start = new Date(end - hours * 3600e3);
  const bucket = hours <= 1 ? "1m" : hours <= 6 ? "5m" : "15m";
  const query = new URLSearchParams({ metric, bucket, agg: "avg,max", start: start.toISOString(), end: end.toISOString() });
  const series = await api(`/v1/sensors/${encodeURIComponent(sensorId)}/series?${query}`);
  const width = 800, height = 260, left = 44, bottom = 22, top = 10, right = 10;
  const values = series.points.map((p) => p.avg);
  const lo = Math.min(...values, 0), hi = Math.max(...values, 1);
  const x = (t) => left + ((new Date(t) - start) / (end - start)) * (width - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo || 1)) * (height - top - bottom);
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }),
    svg("text", { x: 4, y: top + 8 }, hi.toFixed(1)), svg("text", { x: 4, y: height - bottom }, lo.toFixed(1)),
    svg("text", { x: left, y: height - 6 }, timeOf(start.toISOString())),
    svg("text", { x: width - 60, y: height - 6 }, timeOf(end.toISOString())));
  if (values.length) {
    const path = series.points.map((p, i) => `${i ? "L" : "M"}${x(p.bucket_start).toFixed(1)},${y(p.avg).toFixed(1)}`);
    chart.append(svg("path", { class: "series", d: path.join(" ") }));
  } else {
    chart.append(svg("text", { x: left + 10, y: 40 }, `no ${metric} readings in this range`));
  }
  for (const alert of state.alerts.values()) {
    if (alert.sensor_id !== sensorId || new Date(alert.opened_at) < start) continue;
    const ax = x(alert.opened_at).toFixed(1);
    const colour = getComputedStyle(document.documentElement).getPropertyValue(`--${alert.severity}`);
    chart.append(svg("line", { class: "mark", x1: ax, x2: ax, y1: top, y2: height - bottom, stroke: colour }),
      svg("text", { x: Number(ax) + 3, y: top + 10 }, `${alert.kind} (${alert.status})`));
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
