// The market-ticker page: plain browser JavaScript, no build step. The Socket.IO client
// comes from /socket.io/socket.io.js, served by Switchyard from the installed
// socket.io-client package — the same page works against a socket.io server.

const NAMESPACE = "/ws/rt_market";
const HISTORY = 120; // prices kept for the sparkline
const MIN_SPAN = 30; // the sparkline's x axis spans at least this many points
const LIST_ROWS = 15; // rows of the tick list
const RECORDED = 5000; // ticks kept in window.__ticks
const ACK_TIMEOUT_MS = 5000;

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"),
  symbol: $("symbol"),
  quoteSymbol: $("quote-symbol"),
  quoteName: $("quote-name"),
  price: $("price"),
  change: $("change"),
  sparkline: $("sparkline"),
  error: $("error"),
  ticks: $("ticks"),
  transport: $("transport"),
  tickCount: $("tick-count"),
  interval: $("interval"),
};

const fmt = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const time = new Intl.DateTimeFormat("en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 1,
});

/** Everything received, in order, for inspection (tests read these). */
window.__ticks = [];
/** Subscription changes: { type, symbol, at } where `at` is the index into __ticks. */
window.__events = [];

const state = {
  symbols: new Map(), // symbol -> { symbol, name, open }
  desired: null, // the symbol the user picked
  subscribed: null, // the symbol the server confirmed
  syncing: false,
  session: 0, // bumped on every (re)connect
  open: 0,
  history: [],
  received: 0,
};

function setStatus(kind, text) {
  el.status.dataset.state = kind;
  el.status.textContent = text;
}

function showError(message) {
  el.error.hidden = message === "";
  el.error.textContent = message;
}

function record(type, symbol) {
  window.__events.push({ type, symbol, at: window.__ticks.length });
}

// ——— realtime ———

const socket = window.io(NAMESPACE);

socket.on("connect", () => {
  setStatus("connected", "connected");
  el.transport.textContent = socket.io.engine.transport.name;
  socket.io.engine.once("upgrade", (transport) => {
    el.transport.textContent = transport.name;
  });
  // A new session has no rooms: subscribe again.
  state.session++;
  state.subscribed = null;
  sync();
});

socket.on("disconnect", (reason) => {
  setStatus("disconnected", `disconnected (${reason})`);
  state.subscribed = null;
});

socket.on("connect_error", (err) => {
  setStatus("disconnected", `cannot connect (${err.message})`);
});

socket.on("tick", (tick) => {
  window.__ticks.push({ ...tick, receivedAt: Date.now() });
  if (window.__ticks.length > RECORDED) window.__ticks.splice(0, window.__ticks.length - RECORDED);
  state.received++;
  el.tickCount.textContent = String(state.received);
  // A tick of the new symbol may arrive just before its subscribe ack; ticks of the old
  // one cannot arrive after the unsubscribe ack (same ordered connection).
  if (tick.symbol !== state.desired) return;
  showPrice(tick.price);
  pushHistory(tick.price);
  addRow(tick);
});

/**
 * Brings the server's rooms in line with the picked symbol, one request at a time, so
 * quick clicks end up subscribed to the last pick only. A reconnect starts a new
 * session (without rooms); replies that belong to an older session are ignored.
 */
async function sync() {
  if (state.syncing) return;
  state.syncing = true;
  const session = state.session;
  try {
    while (socket.connected && session === state.session && state.subscribed !== state.desired) {
      if (state.subscribed !== null) {
        const old = state.subscribed;
        const reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("unsubscribe", old);
        if (session !== state.session) break;
        if (!reply.ok) throw new Error(reply.error);
        state.subscribed = null;
        record("unsubscribed", old);
      } else {
        const wanted = state.desired;
        const reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("subscribe", wanted);
        if (session !== state.session) break;
        if (!reply.ok) throw new Error(reply.error);
        state.subscribed = reply.symbol;
        record("subscribed", reply.symbol);
        if (reply.symbol === state.desired && state.history.length === 0) {
          showPrice(reply.quote.price);
          pushHistory(reply.quote.price);
        }
      }
    }
    showError("");
  } catch (err) {
    if (session === state.session) showError(`subscription failed: ${err.message}`);
  } finally {
    state.syncing = false;
    if (session !== state.session) sync();
  }
}

// ——— picking a symbol ———

function pick(symbol) {
  const info = state.symbols.get(symbol);
  if (info === undefined || symbol === state.desired) return;
  state.desired = symbol;
  state.open = info.open;
  state.history = [];
  el.quoteSymbol.textContent = symbol;
  el.quoteName.textContent = info.name;
  el.price.textContent = "—";
  el.change.textContent = "";
  el.ticks.replaceChildren();
  drawSparkline();
  if (location.hash !== `#${symbol}`) history.replaceState(null, "", `#${symbol}`);
  sync();
}

el.symbol.addEventListener("change", () => pick(el.symbol.value));

async function loadSymbols() {
  try {
    const res = await fetch("/api/symbols", { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    el.symbol.replaceChildren();
    for (const info of body.symbols) {
      state.symbols.set(info.symbol, info);
      const option = document.createElement("option");
      option.value = info.symbol;
      option.textContent = `${info.symbol} · ${info.name}`;
      option.dataset.symbol = info.symbol;
      el.symbol.append(option);
    }
    el.interval.textContent = `${body.intervalMs} ms`;
    el.symbol.disabled = false;
    const fromHash = decodeURIComponent(location.hash.slice(1)).toUpperCase();
    const first = state.symbols.has(fromHash) ? fromHash : body.symbols[0]?.symbol;
    if (first !== undefined) {
      el.symbol.value = first;
      pick(first);
    }
  } catch (err) {
    showError(`cannot load symbols: ${err.message}`);
  }
}

// ——— drawing ———

function showPrice(price) {
  el.price.textContent = fmt.format(price);
  const change = price - state.open;
  const pct = state.open === 0 ? 0 : (change / state.open) * 100;
  const sign = change > 0 ? "+" : change < 0 ? "−" : "";
  el.change.textContent = `${sign}${fmt.format(Math.abs(change))} (${sign}${fmt.format(Math.abs(pct))} %)`;
  el.change.className = `change ${change > 0 ? "up" : change < 0 ? "down" : ""}`;
}

function pushHistory(price) {
  state.history.push(price);
  if (state.history.length > HISTORY) state.history.shift();
  drawSparkline();
}

function addRow(tick) {
  const li = document.createElement("li");
  li.dataset.symbol = tick.symbol;
  li.dataset.seq = String(tick.seq);
  const sym = document.createElement("span");
  sym.className = "sym";
  sym.textContent = tick.symbol;
  const px = document.createElement("span");
  px.className = "px";
  px.textContent = fmt.format(tick.price);
  li.append(sym, " ", px, ` #${tick.seq} ${time.format(tick.t)}`);
  el.ticks.prepend(li);
  while (el.ticks.children.length > LIST_ROWS) el.ticks.lastElementChild.remove();
}

function drawSparkline() {
  const canvas = el.sparkline;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const points = state.history;
  if (points.length === 0) return;
  const pad = 10;
  let lo = Math.min(...points, state.open);
  let hi = Math.max(...points, state.open);
  if (hi - lo < 0.01) {
    hi += 0.5;
    lo -= 0.5;
  }
  // The line fills the width after MIN_SPAN points, then scrolls once HISTORY is full.
  const span = Math.max(MIN_SPAN, points.length) - 1;
  const x = (i) => pad + (i / span) * (width - 2 * pad);
  const y = (p) => height - pad - ((p - lo) / (hi - lo)) * (height - 2 * pad);
  // The open, dashed, for reference.
  ctx.strokeStyle = "#26313d";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(pad, y(state.open));
  ctx.lineTo(width - pad, y(state.open));
  ctx.stroke();
  ctx.setLineDash([]);
  const last = points[points.length - 1];
  ctx.strokeStyle = last >= state.open ? "#3fb950" : "#f85149";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((p, i) => {
    if (i === 0) ctx.moveTo(x(i), y(p));
    else ctx.lineTo(x(i), y(p));
  });
  ctx.stroke();
  ctx.fillStyle = ctx.strokeStyle;
  ctx.beginPath();
  ctx.arc(x(points.length - 1), y(last), 3, 0, Math.PI * 2);
  ctx.fill();
}

window.addEventListener("resize", drawSparkline);
loadSymbols();
