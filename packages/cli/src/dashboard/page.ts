/**
 * The dashboard page: static HTML and one script, no data and no secret inside. The script
 * asks for the admin key (or reads it from the URL fragment, which is never sent to the
 * server), keeps it in sessionStorage and polls `{base}/api/snapshot` with it as a Bearer
 * token. Plots are drawn on canvases; each canvas carries its latest value and point count
 * in data attributes (what the browser tests read, next to the pixels).
 */

/** Escapes a value for an HTML attribute. */
function attr(value: string): string {
  return value.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page; `base` is the dashboard path (e.g. "/dashboard"). */
export function dashboardHtml(base: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard dashboard</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f7f8fa; }
h1 { font-size: 1.3em; margin: 0 0 .6em; }
h2 { font-size: 1em; margin: 1.2em 0 .4em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .8em 1em; }
canvas { width: 100%; height: 160px; display: block; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: 2px 8px 2px 0; border-bottom: 1px solid #eef0f3; font-variant-numeric: tabular-nums; }
#status.refused, .down { color: #b42318; font-weight: 600; }
.up { color: #067647; font-weight: 600; }
#login[hidden], #main[hidden] { display: none; }
.big { font-size: 1.6em; font-weight: 600; }
</style>
</head>
<body data-base="${attr(base)}">
<h1>Switchyard</h1>
<p id="status">connecting…</p>
<form id="login" hidden>
  <label>Admin key <input id="key" type="password" autocomplete="off" required></label>
  <button type="submit">Open</button>
</form>
<div id="main" hidden>
  <div class="grid">
    <div class="card"><h2>Connections <span id="connections" class="big"></span></h2><canvas id="chart-connections" width="600" height="160"></canvas></div>
    <div class="card"><h2>Messages in per second <span id="rate" class="big"></span></h2><canvas id="chart-messages" width="600" height="160"></canvas></div>
  </div>
  <div class="grid">
    <div class="card"><h2>Rooms</h2><table id="rooms"><thead><tr><th>namespace</th><th>room</th><th>size</th></tr></thead><tbody></tbody></table></div>
    <div class="card"><h2>Cluster — bus <span id="bus"></span></h2><p>cluster connections: <span id="cluster-connections"></span></p><table id="nodes"><thead><tr><th>node</th><th>pid</th><th>connections</th><th>msgs in/s</th><th>bus</th></tr></thead><tbody></tbody></table>
      <h2>Transports</h2><table id="transports"><tbody></tbody></table></div>
    <div class="card"><h2>Errors by code</h2><table id="errors"><thead><tr><th>code</th><th>count</th></tr></thead><tbody></tbody></table>
      <h2>Recent</h2><table id="recent"><tbody></tbody></table></div>
  </div>
</div>
<script src="${attr(base)}/app.js"></script>
</body>
</html>
`;
}

/** The page's script (plain ES2020, no dependencies). */
export const DASHBOARD_JS = `"use strict";
(function () {
  var base = document.body.dataset.base;
  var storeKey = "switchyard.dashboard.key";
  var statusEl = document.getElementById("status");
  var login = document.getElementById("login");
  var main = document.getElementById("main");
  var timer = null;
  var key = null;
  var m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
  if (m) {
    key = decodeURIComponent(m[1]);
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    key = sessionStorage.getItem(storeKey);
  }
  function status(text, cls) {
    statusEl.textContent = text;
    statusEl.className = cls || "";
  }
  function askKey(message) {
    if (timer) clearTimeout(timer);
    timer = null;
    main.hidden = true;
    login.hidden = false;
    status(message, "refused");
  }
  login.addEventListener("submit", function (ev) {
    ev.preventDefault();
    key = document.getElementById("key").value;
    login.hidden = true;
    poll();
  });
  function td(text, cls) {
    var el = document.createElement("td");
    el.textContent = String(text);
    if (cls) el.className = cls;
    return el;
  }
  function fill(table, rows) {
    var body = table.tBodies[0];
    body.replaceChildren();
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { tr.appendChild(Array.isArray(c) ? td(c[0], c[1]) : td(c)); });
      body.appendChild(tr);
    });
  }
  function plot(canvas, points, color) {
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, pad = 24;
    ctx.clearRect(0, 0, w, h);
    var max = 1;
    points.forEach(function (p) { if (p.v > max) max = p.v; });
    ctx.strokeStyle = "#dde1e7";
    ctx.fillStyle = "#667085";
    ctx.font = "11px system-ui";
    ctx.beginPath(); ctx.moveTo(pad, 4); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 4, h - pad); ctx.stroke();
    ctx.fillText(String(max), 2, 12);
    ctx.fillText("0", 2, h - pad);
    if (points.length > 0) {
      var t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(1, t1 - t0);
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(function (p, i) {
        var x = pad + ((p.t - t0) / span) * (w - pad - 6);
        var y = h - pad - (p.v / max) * (h - pad - 8);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }
    canvas.dataset.points = String(points.length);
    canvas.dataset.last = points.length ? String(points[points.length - 1].v) : "";
    canvas.dataset.max = String(max);
  }
  function render(s) {
    var hist = s.history;
    var last = hist[hist.length - 1] || { connections: 0, messagesInPerSec: 0 };
    document.getElementById("connections").textContent = String(last.connections);
    document.getElementById("rate").textContent = String(last.messagesInPerSec);
    plot(document.getElementById("chart-connections"), hist.map(function (p) { return { t: p.t, v: p.connections }; }), "#2e90fa");
    plot(document.getElementById("chart-messages"), hist.map(function (p) { return { t: p.t, v: p.messagesInPerSec }; }), "#12b76a");
    var rooms = [];
    s.namespaces.forEach(function (n) {
      rooms.push([n.name, [n.sockets + " sockets, " + n.totalRooms + " rooms", "muted"], ""]);
      n.rooms.forEach(function (r) { rooms.push(["", r.name, r.size]); });
    });
    fill(document.getElementById("rooms"), rooms);
    var bus = document.getElementById("bus");
    if (s.cluster.bus === null) { bus.textContent = "none (single node)"; bus.className = ""; }
    else { bus.textContent = s.cluster.bus.healthy ? "up" : "down"; bus.className = s.cluster.bus.healthy ? "up" : "down"; }
    function dash(v) { return v === null || v === undefined ? "—" : v; }
    document.getElementById("cluster-connections").textContent = String(s.cluster.totalConnections);
    fill(document.getElementById("nodes"), s.cluster.nodes.map(function (n) {
      var bus = n.busUp === null ? ["—", ""] : n.busUp === 1 ? ["up", "up"] : ["down", "down"];
      return [n.uid + (n.self ? " (this node)" : ""), dash(n.pid), dash(n.connections), dash(n.messagesInPerSec), bus];
    }));
    fill(document.getElementById("transports"), Object.keys(s.transports).map(function (k) { return [k, s.transports[k]]; }));
    fill(document.getElementById("errors"), Object.keys(s.errors.byCode).sort().map(function (k) { return [k, s.errors.byCode[k]]; }));
    fill(document.getElementById("recent"), s.errors.recent.slice(0, 20).map(function (e) {
      return [new Date(e.time).toLocaleTimeString(), e.code, e.message];
    }));
  }
  function poll() {
    if (!key) { askKey("enter the admin key"); return; }
    fetch(base + "/api/snapshot", { headers: { authorization: "Bearer " + key }, cache: "no-store" })
      .then(function (res) {
        if (res.status === 401 || res.status === 429) {
          sessionStorage.removeItem(storeKey);
          return res.json().then(function (b) { askKey("refused: " + (b && b.error ? b.error.message : res.status)); });
        }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json().then(function (s) {
          sessionStorage.setItem(storeKey, key);
          login.hidden = true;
          main.hidden = false;
          status("live — node " + s.node.uid + ", every " + s.intervalMs + " ms", "live");
          render(s);
          timer = setTimeout(poll, s.intervalMs);
        });
      })
      .catch(function (err) {
        status("unreachable: " + err.message + " (retrying)", "refused");
        timer = setTimeout(poll, 2000);
      });
  }
  poll();
})();
`;
