// CityStream ops centre: live alert feed (SSE with a single-use ticket), clustered sensor map (Leaflet +
// markercluster, basemap only when the API settings name a tile URL), alert drill-down (uPlot) that explains why
// an alert fired, and operator actions with a note.
"use strict";
const SEVERITY_RANK = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
const STATUS_RANK = { ok: 0, silent: 1, rejected: 2, alerting: 3 };
const STATUS_COLOUR = { ok: "#2ecc71", alerting: "#ff3b3b", silent: "#8a94a3", rejected: "#c58bff" };
// Explanation fields shown in their own row; anything else a detector adds is listed after them as it comes.
const KNOWN_FIELDS = ["summary", "detector", "detector_version", "metric", "observed", "expected", "score",
  "threshold", "contributing"];
const state = { token: "", role: "", alerts: new Map(), sensors: new Map(), pending: new Map(), selected: null,
  selectedAlert: null, record: null, stream: null, lastEventId: null, retryMs: 1000, config: {}, map: null,
  cluster: null, markers: new Map(), chart: null, fitted: false };
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

function timeOf(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function fmt(value) {
  if (typeof value !== "number") return typeof value === "object" ? JSON.stringify(value) : String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : String(Number(value.toPrecision(4)));
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

// A burst of live events renders the feed once per frame, not once per event.
function scheduleFeed() {
  if (scheduleFeed.pending) return;
  scheduleFeed.pending = true;
  requestAnimationFrame(() => { scheduleFeed.pending = false; renderFeed(); });
}

function renderFeed() {
  const feed = $("feed");
  const shown = visibleAlerts();
  // A thousand cards are cheap; more than that and the feed shows the newest thousand (the count says so).
  feed.replaceChildren(...shown.slice(0, 1000).map(alertCard));
  $("feed-count").textContent = `${shown.length} shown`;
  const critical = [...state.alerts.values()].filter((a) => a.severity === "critical" && a.status === "open");
  const banner = $("critical-banner");
  banner.textContent = `${critical.length} CRITICAL alert${critical.length === 1 ? "" : "s"} open`;
  banner.classList.toggle("hidden", critical.length === 0);
}

function alertCard(alert) {
  const card = el("li", { class: `alert sev-${alert.severity} ${alert.severity} status-${alert.status}`
    + (state.selectedAlert === alert.alert_id ? " selected" : ""), tabindex: "0", role: "button",
  "aria-label": `${alert.severity} ${alert.kind} on ${alert.sensor_id}, ${alert.status}: open the drill-down`,
  "data-alert-id": alert.alert_id, "data-sensor-id": alert.sensor_id, "data-status": alert.status });
  const top = el("div", { class: "top" });
  top.append(el("span", { class: "sev" }, alert.severity), el("span", { class: "kind" }, alert.kind.replace(/_/g, " ")),
    el("span", { class: "status" }, alert.status), el("span", { class: "when" }, timeOf(alert.occurred_at)));
  const meta = `${alert.sensor_id} · ${alert.domain} · ${alert.explanation.metric} · score ${fmt(alert.explanation.score)}`
    + (alert.actor ? ` · by ${alert.actor}` : "") + (alert.assignee ? ` · assigned ${alert.assignee}` : "");
  card.append(top, el("div", { class: "summary" }, alert.explanation.summary), el("div", { class: "meta" }, meta));
  card.addEventListener("click", (e) => { if (e.target.tagName !== "BUTTON") openAlert(alert.alert_id); });
  card.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && e.target === card) { e.preventDefault(); openAlert(alert.alert_id); }
  });
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
  button.addEventListener("click", () => sendAction(alert, action, ""));
  return button;
}

async function sendAction(alert, action, note) {
  const label = action === "acknowledge" ? "Acknowledge" : "Resolve";
  state.pending.set(alert.alert_id, action); renderFeed();
  try {
    // Resolve carries the note itself; an acknowledgement's note follows as a comment on the same alert.
    await api(`/v1/alerts/${encodeURIComponent(alert.alert_id)}/actions`, { method: "POST",
      body: JSON.stringify(action === "resolve" && note ? { action, comment: note } : { action }) });
    if (action === "acknowledge" && note) {
      await api(`/v1/alerts/${encodeURIComponent(alert.alert_id)}/actions`, { method: "POST",
        body: JSON.stringify({ action: "comment", comment: note }) });
    }
    toast(`${label} sent for ${alert.sensor_id}; waiting for confirmation`);
    return true;
  } catch (error) {
    state.pending.delete(alert.alert_id); renderFeed(); toast(`${label} failed: ${error.message}`);
    return false;
  }
}

// ---- live stream: a single-use ticket per connection, never the token in a URL -----------------------------------
async function connectStream() {
  if (state.stream) state.stream.close();
  let ticket;
  try {
    ticket = (await api("/v1/live/tickets", { method: "POST" })).ticket;
  } catch (error) {
    setStreamState(false); scheduleReconnect(); return;
  }
  const query = new URLSearchParams({ ticket });
  if (state.lastEventId) query.set("resume", state.lastEventId);  // nothing missed across a reconnect
  const stream = new EventSource(`/v1/live/alerts?${query}`);
  stream.addEventListener("open", () => { setStreamState(true); state.retryMs = 1000; });
  stream.addEventListener("position", (message) => { state.lastEventId = message.lastEventId; setStreamState(true); });
  stream.addEventListener("alert", (message) => {
    state.lastEventId = message.lastEventId;
    const event = JSON.parse(message.data);
    upsertAlert(event); scheduleFeed(); updateSensorFromAlerts(event.sensor_id);
    if (state.selectedAlert === event.alert_id) showExplanation(event);
  });
  // A ticket opens one connection: EventSource's own retry would reuse it, so reconnect with a fresh one.
  stream.addEventListener("error", () => { stream.close(); setStreamState(false); scheduleReconnect(); });
  state.stream = stream;
}

function scheduleReconnect() {
  clearTimeout(scheduleReconnect.timer);
  scheduleReconnect.timer = setTimeout(connectStream, state.retryMs);
  state.retryMs = Math.min(state.retryMs * 2, 15000);
}

function setStreamState(on) {
  const pill = $("stream-state"); pill.textContent = on ? "live" : "reconnecting";
  pill.className = `pill ${on ? "on" : "off"}`; document.body.dataset.stream = on ? "live" : "down";
}

// ---- map ----------------------------------------------------------------------------------------------------
function initMap() {
  const map = L.map("map", { preferCanvas: true, worldCopyJump: true, zoomSnap: 0.5, maxZoom: 19 });
  if (state.config.tile_url) {
    L.tileLayer(state.config.tile_url, { maxZoom: 19, attribution: state.config.tile_attribution || "" }).addTo(map);
  } else {
    $("map").classList.add("no-basemap");  // no basemap configured: sensors on a plain background
  }
  map.setView([52.37, 4.9], 11);
  const renderer = L.canvas({ padding: 0.3 });
  state.cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45,
    spiderfyOnMaxZoom: true, iconCreateFunction: clusterIcon,
    // Also called when the group joins the map (with nothing to add): only a render of ours counts.
    chunkProgress: (processed, total) => { if (processed === total && state.rendered) mapRendered(); } });
  state.cluster.addTo(map);
  state.map = map; state.renderer = renderer;
}

function clusterIcon(cluster) {
  let worst = "ok";
  for (const marker of cluster.getAllChildMarkers()) {
    if (STATUS_RANK[marker.options.status] > STATUS_RANK[worst]) worst = marker.options.status;
    if (worst === "alerting") break;
  }
  const count = cluster.getChildCount();
  const size = count < 100 ? 34 : count < 1000 ? 42 : 50;
  return L.divIcon({ html: `<span>${count}</span>`, className: `cluster cluster-${worst}`, iconSize: [size, size] });
}

function markerFor(sensor) {
  const marker = L.circleMarker([sensor.lat, sensor.lon], { renderer: state.renderer, radius: 7, weight: 1.5,
    color: "#0d141c", fillOpacity: 0.95, fillColor: STATUS_COLOUR[sensor.status], status: sensor.status,
    sensorId: sensor.sensor_id });
  marker.bindTooltip(`${sensor.sensor_id} (${sensor.domain}): ${sensor.status}`);
  marker.on("click", () => selectSensor(sensor.sensor_id));
  return marker;
}

function renderMap() {
  state.renderStarted = performance.now(); state.rendered = true;
  const markers = [];
  for (const sensor of state.sensors.values()) markers.push(markerFor(sensor));
  state.cluster.clearLayers();
  state.markers = new Map(markers.map((m) => [m.options.sensorId, m]));
  // Chunked: the clustering of thousands of markers yields to the browser every 200 ms; mapRendered runs at the end.
  state.cluster.addLayers(markers);
  if (!markers.length) mapRendered();
}

function mapRendered() {
  if (!state.fitted && state.markers.size) {
    const bounds = L.latLngBounds([...state.sensors.values()].map((s) => [s.lat, s.lon]));
    state.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 15 }); state.fitted = true;
  }
  // From building the markers to the first frame with every cluster drawn: kept for the browser test and docs.
  requestAnimationFrame(() => {
    document.body.dataset.mapRenderMs = (performance.now() - state.renderStarted).toFixed(0);
    document.body.dataset.mapMarkers = String(state.markers.size);
  });
}

function updateSensorFromAlerts(sensorId) {
  const sensor = state.sensors.get(sensorId);
  if (!sensor) return;
  const open = [...state.alerts.values()].some((a) => a.sensor_id === sensorId && a.status !== "resolved");
  const status = open ? "alerting" : (sensor.status === "alerting" ? "ok" : sensor.status);
  if (status === sensor.status) return;
  sensor.status = status;
  replaceMarker(sensor);
}

function replaceMarker(sensor) {
  const old = state.markers.get(sensor.sensor_id);
  if (old) state.cluster.removeLayer(old);
  const marker = markerFor(sensor);
  state.markers.set(sensor.sensor_id, marker); state.cluster.addLayer(marker);
}

async function loadSensors() {
  const answer = await api("/v1/ops/map");
  const fresh = new Map(answer.sensors.map(([sensor_id, lon, lat, domain, status]) =>
    [sensor_id, { sensor_id, lon, lat, domain, status }]));
  const same = fresh.size === state.sensors.size && [...fresh.values()].every((s) => {
    const known = state.sensors.get(s.sensor_id);
    return known && known.lon === s.lon && known.lat === s.lat;
  });
  state.sensors = fresh;
  showCounts(answer);
  if (!same || !state.rendered) { renderMap(); return; }
  // The same sensors in the same places (the usual 30-second refresh): repaint only those whose status changed.
  for (const sensor of fresh.values()) {
    const marker = state.markers.get(sensor.sensor_id);
    if (marker && marker.options.status !== sensor.status) replaceMarker(sensor);
  }
}

function showCounts(answer) {
  const counts = {};
  for (const sensor of state.sensors.values()) counts[sensor.status] = (counts[sensor.status] || 0) + 1;
  $("map-count").textContent = `${state.sensors.size} on the map · ${counts.alerting || 0} alerting · `
    + `${counts.silent || 0} silent · ${answer.unlocated} without location`;
}

async function loadAlerts() {
  // Every open or acknowledged alert, page by page (an operator must see all of them, not the first page).
  for (let offset = 0; offset !== null;) {
    const page = await api(`/v1/alerts?status=open,acknowledged&limit=500&offset=${offset}`);
    for (const alert of page.items) upsertAlert(alert);
    offset = page.next_offset;
  }
  renderFeed();
}

// ---- drill-down ---------------------------------------------------------------------------------------------
async function loadRecord(sensorId) {
  try { state.record = await api(`/v1/ops/sensors/${encodeURIComponent(sensorId)}`); }
  catch (error) { state.record = null; }
  const box = $("register-record"), facts = $("record-facts");
  box.classList.remove("hidden");
  const r = state.record;
  const rows = r ? [["Owner", r.owner_organisation], ["Purpose", r.purpose], ["Legal ground", r.legal_ground],
    ["Personal data", r.personal_data == null ? null : (r.personal_data ? "yes" : "no")], ["Status", r.status],
    ["Metrics", r.metrics.map((m) => `${m.name} (${m.unit})`).join(", ")],
    ["Reports every", `${fmt(r.reporting_interval_s)} s`], ["Where", r.location_description],
    ["Active until", r.active_until && new Date(r.active_until).toLocaleDateString()], ["Version", r.version]]
    : [["Register", "not in the register topic (deleted, or not declared)"]];
  facts.replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k.toLowerCase().replace(/ /g, "_") }, String(v))]));
  const link = $("record-link");
  link.classList.toggle("hidden", !(r && r.register_url));
  if (r && r.register_url) link.href = r.register_url;
  return r;
}

function setMetrics(metrics, chosen) {
  const select = $("drill-metric");
  const names = [...new Set([chosen, ...metrics].filter(Boolean))];
  select.replaceChildren(...names.map((m) => el("option", { value: m }, m)));
  if (chosen) select.value = chosen;
}

async function selectSensor(sensorId) {
  state.selected = sensorId; state.selectedAlert = null;
  $("drill-title").textContent = sensorId;
  $("alert-detail").classList.add("hidden"); $("action-form").classList.add("hidden");
  $("contributing").classList.add("hidden");
  if ($("drill-range").value === "alert") $("drill-range").value = "6";
  const record = await loadRecord(sensorId);
  setMetrics(record ? record.metrics.map((m) => m.name) : [], null);
  renderFeed();
  await loadChart();
}

async function openAlert(alertId) {
  const known = state.alerts.get(alertId);
  state.selectedAlert = alertId; state.selected = known ? known.sensor_id : null;
  renderFeed();
  const detail = await api(`/v1/alerts/${encodeURIComponent(alertId)}`);
  const alert = detail.alert;
  state.selected = alert.sensor_id;
  $("drill-title").textContent = `${alert.kind.replace(/_/g, " ")} on ${alert.sensor_id}`;
  const record = await loadRecord(alert.sensor_id);
  // The metric the detector judged, from the explanation (not the sensor's first metric). A silence alert judges
  // the whole sensor (metric "*"): its readings are shown on the first declared metric, with the gap visible.
  const declared = record ? record.metrics.map((m) => m.name) : [];
  const judged = alert.explanation.metric;
  setMetrics(declared, judged === "*" ? declared[0] : judged);
  $("drill-range").value = "alert";
  state.detail = detail;
  showExplanation(alert);
  await loadChart();
}

function showExplanation(alert) {
  const x = alert.explanation;
  $("alert-detail").classList.remove("hidden");
  $("explain-summary").textContent = x.summary;
  const rows = [["Detector", `${x.detector} v${x.detector_version}`, "detector"], ["Metric", x.metric, "metric"],
    ["Observed", fmt(x.observed), "observed"], ["Expected", x.expected == null ? null : fmt(x.expected), "expected"],
    ["Score", `${fmt(x.score)} (fires at ${fmt(x.threshold)})`, "score"], ["Threshold", fmt(x.threshold), "threshold"],
    ["Severity", alert.severity, "severity"], ["Status", alert.status + (alert.actor ? ` by ${alert.actor}` : ""),
      "status"], ["Opened", new Date(alert.opened_at).toLocaleString(), "opened"]];
  for (const [key, value] of Object.entries(x)) {
    if (!KNOWN_FIELDS.includes(key) && value !== null && value !== undefined) {
      rows.push([key.replace(/_/g, " "), fmt(value), key]);  // fields a newer detector adds, e.g. likelihood, band
    }
  }
  $("explain-facts").replaceChildren(...rows.filter(([, v]) => v !== null)
    .flatMap(([k, v, f]) => [el("dt", {}, k), el("dd", { "data-field": f }, v)]));
  const contributing = x.contributing || [];
  $("contributing").classList.toggle("hidden", contributing.length === 0);
  $("contributing").querySelector("tbody").replaceChildren(...contributing.map((c) => {
    const row = el("tr");
    row.append(el("td", {}, String(c.seq)), el("td", {}, new Date(c.observed_at).toLocaleString()),
      el("td", {}, c.metric), el("td", {}, fmt(c.value)));
    return row;
  }));
  const canAct = ["operator", "admin"].includes(state.role) && alert.status !== "resolved";
  $("action-form").classList.toggle("hidden", !canAct);
  $("ack-button").classList.toggle("hidden", alert.status !== "open");
}

// The band a detector may publish (newer explanations): {lower, upper} / {low, high} / [lo, hi] / flat fields.
function bandOf(x) {
  const b = x.band || x.expected_band;
  if (Array.isArray(b) && b.length === 2) return b;
  if (b && typeof b === "object") {
    const lo = b.lower ?? b.low ?? b.min, hi = b.upper ?? b.high ?? b.max;
    if (typeof lo === "number" && typeof hi === "number") return [lo, hi];
  }
  if (typeof x.expected_low === "number" && typeof x.expected_high === "number") return [x.expected_low, x.expected_high];
  if (typeof x.lower === "number" && typeof x.upper === "number") return [x.lower, x.upper];
  return null;
}

function bucketFor(seconds) { return `${Math.max(1, Math.ceil(seconds / 60))}m`; }

function chartWindow(alert) {
  const interval = (state.record && state.record.reporting_interval_s) || 300;
  if (alert && $("drill-range").value === "alert") {
    // Around the alert, sized to the sensor's interval: 40 readings before, 20 after (at least 30/15 minutes).
    const at = new Date(alert.opened_at).getTime(), last = new Date(alert.occurred_at).getTime();
    const start = new Date(at - Math.max(1800e3, 40 * interval * 1e3));
    const end = new Date(Math.min(Math.max(at, last) + Math.max(900e3, 20 * interval * 1e3), Date.now() + 60e3));
    return { start, end, bucket: bucketFor(interval) };
  }
  const hours = Number($("drill-range").value) || 6, end = new Date();
  return { start: new Date(end - hours * 3600e3), end,
    bucket: bucketFor(Math.max(interval, (hours * 3600) / 120)) };
}

async function loadChart() {
  const sensorId = state.selected, metric = $("drill-metric").value, box = $("chart");
  if (!sensorId) return;
  if (state.chart) { state.chart.destroy(); state.chart = null; }
  box.replaceChildren(); document.body.dataset.chart = "loading";
  if (!metric) { box.append(el("p", { class: "empty" }, "this sensor declares no metric")); return; }
  const alert = state.selectedAlert ? state.alerts.get(state.selectedAlert) || state.detail?.alert : null;
  const { start, end, bucket } = chartWindow(alert);
  const query = new URLSearchParams({ metric, bucket, agg: "avg,min,max", start: start.toISOString(), end: end.toISOString() });
  let series;
  try {
    series = await api(`/v1/sensors/${encodeURIComponent(sensorId)}/series?${query}`);
  } catch (error) {
    box.replaceChildren(el("p", { class: "empty" }, `readings could not be loaded: ${error.message}`));
    document.body.dataset.chart = "failed";
    return;
  }
  const judged = alert && (alert.explanation.metric === metric || alert.explanation.metric === "*");
  drawChart(series, judged ? alert : null, start, end);
}

function drawChart(series, alert, start, end) {
  const box = $("chart"), x = alert ? alert.explanation : null;
  const history = alert && state.detail && state.detail.alert.alert_id === alert.alert_id ? state.detail.history : [];
  // Points with a value on this metric; a silence alert's contributing reading ("*") marks a time, not a value.
  const contributing = x ? (x.contributing || []).filter((c) => c.metric === series.metric) : [];
  const times = new Set(series.points.map((p) => Date.parse(p.bucket_start) / 1e3));
  for (const c of contributing) times.add(Date.parse(c.observed_at) / 1e3);
  for (const h of history) times.add(Date.parse(h.occurred_at) / 1e3);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const column = () => xs.map(() => null);
  const avg = column(), lo = column(), hi = column(), marks = column(), scores = column();
  for (const p of series.points) {
    const i = index.get(Date.parse(p.bucket_start) / 1e3); avg[i] = p.avg; lo[i] = p.min; hi[i] = p.max;
  }
  for (const c of contributing) marks[index.get(Date.parse(c.observed_at) / 1e3)] = c.value;
  for (const h of history) {
    if (h.explanation.detector === x.detector) scores[index.get(Date.parse(h.occurred_at) / 1e3)] = h.explanation.score;
  }
  const data = [xs, avg, lo, hi];
  const opts = { width: Math.max(box.clientWidth, 300), height: 260,
    scales: { x: { time: true, range: [start / 1e3, end / 1e3] } }, legend: { live: false },
    series: [{}, { label: `${series.metric} (avg per ${series.bucket_seconds / 60} min)`, stroke: "#4cb3ff", width: 2,
      spanGaps: true, points: { show: series.points.length < 80, size: 4 } },
    { label: "min", stroke: "rgba(76,179,255,.35)", width: 1, points: { show: false } },
    { label: "max", stroke: "rgba(76,179,255,.35)", width: 1, points: { show: false } }],
    axes: [{ stroke: "#8b9bb0", grid: { stroke: "#1b2734" } }, { stroke: "#8b9bb0", grid: { stroke: "#1b2734" },
      label: series.metric }], bands: [{ series: [3, 2], fill: "rgba(76,179,255,.08)" }], hooks: { draw: [] } };
  const notes = [];
  if (x) {
    const flat = (label, value, stroke, dash) => {
      data.push(xs.map(() => value));
      opts.series.push({ label, stroke, width: 2, dash, points: { show: false } });
      return data.length - 1;
    };
    // Expected value, band and value-scale threshold are in the judged metric's unit: drawn only on that metric
    // (a silence alert's "expected" is a reporting interval in seconds, not a fill level).
    const onValues = x.metric === series.metric;
    const band = onValues ? bandOf(x) : null;
    if (band) {
      const l = flat(`expected band low ${fmt(band[0])}`, band[0], "#2ecc71", [4, 4]);
      const u = flat(`expected band high ${fmt(band[1])}`, band[1], "#2ecc71", [4, 4]);
      opts.bands.push({ series: [u, l], fill: "rgba(46,204,113,.12)" });
    }
    if (onValues && typeof x.expected === "number") flat(`expected ${fmt(x.expected)}`, x.expected, "#2ecc71", [8, 4]);
    // The threshold is on the detector's score scale. Where the score is the value itself (e.g. a fill level
    // over 0.9) it is drawn on the value axis; otherwise score and threshold get their own axis on the right.
    const valueScale = !onValues ? null : typeof x.threshold_value === "number" ? x.threshold_value
      : Math.abs(x.score - x.observed) < 1e-9 ? x.threshold : null;
    if (valueScale !== null) {
      flat(`threshold ${fmt(valueScale)}`, valueScale, "#ff8c1a", [2, 3]);
    } else {
      data.push(scores);
      opts.series.push({ label: `score (fires at ${fmt(x.threshold)})`, stroke: "#f5c518", scale: "score", width: 0,
        paths: () => null, points: { show: true, size: 8, fill: "#f5c518" } });
      data.push(xs.map(() => x.threshold));
      opts.series.push({ label: `threshold ${fmt(x.threshold)} (score)`, stroke: "#ff8c1a", scale: "score", width: 2,
        dash: [2, 3], points: { show: false } });
      opts.scales.score = { range: (u, min, max) => [0, Math.max(max || 0, x.threshold, x.score) * 1.15] };
      opts.axes.push({ scale: "score", side: 1, stroke: "#f5c518", grid: { show: false }, label: "score" });
      notes.push(`score ${fmt(x.score)} against threshold ${fmt(x.threshold)} on the detector's scale (right axis)`);
    }
    data.push(marks);
    opts.series.push({ label: `contributing readings (${contributing.length})`, stroke: "#ff3b3b", width: 0,
      paths: () => null, points: { show: true, size: 11, width: 2, fill: "#ff3b3b", stroke: "#fff" } });
    const opened = Date.parse(alert.opened_at) / 1e3;
    opts.hooks.draw.push((u) => {  // the moment the alert opened, as a vertical line across the plot
      const px = u.valToPos(opened, "x", true), ctx = u.ctx;
      ctx.save(); ctx.strokeStyle = "#ff3b3b"; ctx.setLineDash([5, 4]); ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.restore();
    });
    notes.push(`alert opened ${new Date(alert.opened_at).toLocaleString()} (dashed red line)`);
    if (contributing.length) notes.push(`${contributing.length} contributing reading(s) marked in red`);
  }
  if (!series.points.length) notes.unshift(`no ${series.metric} readings stored in this window`);
  $("chart-note").textContent = notes.join(" · ");
  state.chart = new uPlot(opts, data, box);
  document.body.dataset.chart = "ready";
  box.dataset.points = String(series.points.length);
  box.dataset.contributing = String(contributing.length);
  box.dataset.metric = series.metric;
}

$("action-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const alert = state.alerts.get(state.selectedAlert) || (state.detail && state.detail.alert);
  if (!alert) return;
  const action = (e.submitter && e.submitter.dataset.action) || "acknowledge";
  if (await sendAction(alert, action, $("action-note").value.trim())) $("action-note").value = "";
});

// ---- start --------------------------------------------------------------------------------------------------
async function start() {
  state.token = readToken();
  if (!state.token) { $("who").textContent = "enter a token to start"; return; }
  try {
    const me = await api("/v1/me");
    state.role = me.role; $("who").textContent = `${me.name} (${me.role})`;
    $("token-form").classList.add("hidden");
  } catch (error) { $("who").textContent = `sign-in failed: ${error.message}`; return; }
  state.config = await api("/v1/ops/config");
  if (!state.map) initMap();
  $("chart").replaceChildren(el("p", { class: "empty" }, "Open an alert from the list, or click a sensor on the map."));
  connectStream();
  await loadAlerts();
  await loadSensors();
  document.body.dataset.ready = "true";
  setInterval(() => loadSensors().catch((e) => toast(`sensor refresh failed: ${e.message}`)), 30000);
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault(); sessionStorage.setItem("citystream-token", $("token").value.trim()); start();
});
for (const id of ["filter-domain", "filter-status"]) $(id).addEventListener("change", renderFeed);
for (const id of ["drill-metric", "drill-range"]) $(id).addEventListener("change", loadChart);
window.addEventListener("resize", () => { if (state.chart) state.chart.setSize({ width: $("chart").clientWidth,
  height: 260 }); });
// Re-draws the open alert from the page's state (the browser test feeds it explanations newer detectors send).
async function openAlertFromState() {
  showExplanation(state.alerts.get(state.selectedAlert)); await loadChart();
}
window.citystreamOps = { state, openAlert, selectSensor, openAlertFromState, renderFeedForTest: renderFeed,
  refreshSensors: loadSensors };  // for the browser test
start();
