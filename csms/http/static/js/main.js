// The operations dashboard: sign-in with an API token, the four parts, live updates.

import { forgetToken, getJson, saveToken, takeToken, Unauthorized } from "./api.js";
import { setText } from "./dom.js";
import { followStream } from "./stream.js";
import { renderFleet, renderRuns, renderStations, renderTickets, tick } from "./views.js";

const $ = (id) => document.getElementById(id);

/** What to re-read after an event of each topic. */
const TOPIC_TARGETS = {
  station: ["fleet", "stations"],
  fault: ["fleet", "stations"],
  run: ["fleet", "stations", "runs"],
  ticket: ["fleet", "stations", "tickets"],
};
const REFRESH_GAP_MS = 500;
const RETRY_MS = 5000;
const SAFETY_POLL_MS = 60000;
const STATION_LIMIT = 200;

const session = { token: null, stream: null, ticker: null, poller: null, live: false };

const loaders = {
  async fleet() {
    renderFleet(await getJson(session.token, "/fleet"));
  },
  async stations() {
    const page = await getJson(session.token, "/stations", {
      state: $("filter-state").value,
      q: $("filter-q").value.trim(),
      limit: STATION_LIMIT,
    });
    renderStations(page.items, page.total);
  },
  async runs() {
    renderRuns((await getJson(session.token, "/runs", { active: "true", limit: 100 })).items);
  },
  async tickets() {
    renderTickets((await getJson(session.token, "/tickets", { active: "true" })).items);
  },
};

/** Re-reads what events touched: batched, at most one round every REFRESH_GAP_MS. */
class Refresher {
  constructor() {
    this.dirty = new Set();
    this.timer = null;
    this.running = false;
    this.notBefore = 0;
  }

  request(...names) {
    for (const name of names) this.dirty.add(name);
    this.schedule();
  }

  all() {
    this.request(...Object.keys(loaders));
  }

  schedule() {
    if (this.timer !== null || this.running || !this.dirty.size) return;
    const wait = Math.max(30, this.notBefore - Date.now());
    this.timer = window.setTimeout(() => this.flush(), wait);
  }

  async flush() {
    this.timer = null;
    if (!session.token) return;
    this.running = true;
    this.notBefore = Date.now() + REFRESH_GAP_MS;
    const names = [...this.dirty];
    this.dirty.clear();
    const results = await Promise.allSettled(names.map((name) => loaders[name]()));
    this.running = false;
    const failed = names.filter((_, i) => results[i].status === "rejected");
    const errors = results.filter((r) => r.status === "rejected").map((r) => r.reason);
    if (errors.some((error) => error instanceof Unauthorized)) {
      signOut("The token was refused (revoked, unknown, or below the viewer role).");
      return;
    }
    if (failed.length) {
      console.warn("refresh failed", errors);
      showConnection("error", "API unreachable, retrying…");
      for (const name of failed) this.dirty.add(name);
      this.notBefore = Date.now() + RETRY_MS;
    } else {
      $("dashboard").dataset.updated = String(Date.now());
      if (session.live) showConnection("live", "Live");
    }
    this.schedule();
  }
}

const refresher = new Refresher();

function showConnection(state, text) {
  const node = $("connection");
  node.dataset.state = state;
  setText(node, text);
}

function onEvent(name) {
  if (name === "ready" || name === "overflow") {
    refresher.all();
    return;
  }
  const targets = TOPIC_TARGETS[name.split(".")[0]];
  if (targets) refresher.request(...targets);
}

function onStreamState(state, seconds) {
  session.live = state === "live";
  if (state === "live") showConnection("live", "Live");
  else if (state === "connecting") showConnection("connecting", "Connecting…");
  else if (state === "retry") showConnection("connecting", `Reconnecting in ${seconds} s…`);
  else if (state === "unauthorized") {
    signOut("The token was refused (revoked, unknown, or below the viewer role).");
  }
}

function start(token) {
  session.token = token;
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("change-token").hidden = false;
  refresher.all();
  session.stream = followStream(token, { onEvent, onState: onStreamState });
  session.ticker = window.setInterval(tick, 1000);
  session.poller = window.setInterval(() => refresher.all(), SAFETY_POLL_MS);
}

function stop() {
  session.stream?.stop();
  window.clearInterval(session.ticker);
  window.clearInterval(session.poller);
  session.token = null;
  session.stream = null;
  session.live = false;
}

function signOut(message = "") {
  stop();
  forgetToken();
  $("dashboard").hidden = true;
  $("change-token").hidden = true;
  $("login").hidden = false;
  setText($("login-error"), message);
  showConnection("idle", "Not connected");
  $("token-input").focus();
}

function bind() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    $("token-input").value = "";
    setText($("login-error"), "");
    saveToken(value);
    start(value);
  });
  $("change-token").addEventListener("click", () => signOut());
  $("station-filter").addEventListener("submit", (event) => event.preventDefault());
  $("filter-state").addEventListener("change", () => refresher.request("stations"));
  let typing = null;
  $("filter-q").addEventListener("input", () => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => refresher.request("stations"), 300);
  });
}

bind();
const token = takeToken();
if (token) start(token);
else signOut();
