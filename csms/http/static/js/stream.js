// The live stream (/api/v1/stream, Server-Sent Events) read with fetch() so that the token
// travels in the Authorization header. Reconnects with exponential backoff; a connection
// silent for longer than three heartbeats is considered dead.

import { API } from "./api.js";

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const SILENCE_MS = 50000;

/**
 * Follow the stream until stop() is called.
 * onEvent(name, data): every event ("ready", "overflow", "station.status"...);
 * onState(state, detail): "connecting" | "live" | "retry" (detail: seconds) | "unauthorized".
 */
export function followStream(token, { onEvent, onState }) {
  let stopped = false;
  let controller = null;
  let attempt = 0;
  let retryTimer = null;

  async function connect() {
    if (stopped) return;
    controller = new AbortController();
    let lastActivity = Date.now();
    const watchdog = window.setInterval(() => {
      if (Date.now() - lastActivity > SILENCE_MS) controller.abort();
    }, 5000);
    onState("connecting");
    try {
      const response = await fetch(`${API}/stream`, {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
      if (response.status === 401 || response.status === 403) {
        stopped = true;
        onState("unauthorized");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
      const parser = new EventParser((name, data) => {
        if (name === "ready") {
          attempt = 0;
          onState("live");
        }
        onEvent(name, data);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lastActivity = Date.now();
        parser.push(value);
      }
    } catch (error) {
      if (!stopped && error?.name !== "AbortError") console.warn("stream dropped", error);
    } finally {
      window.clearInterval(watchdog);
    }
    scheduleRetry();
  }

  function scheduleRetry() {
    if (stopped) return;
    const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    onState("retry", Math.ceil(delay / 1000));
    retryTimer = window.setTimeout(connect, delay);
  }

  connect();
  return {
    stop() {
      stopped = true;
      window.clearTimeout(retryTimer);
      controller?.abort();
    },
  };
}

/** Incremental text/event-stream parser (the WHATWG rules for event, data and comments). */
export class EventParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    // A trailing "\r" may be the first half of "\r\n": hold it back until the next chunk.
    const held = this.buffer.endsWith("\r") ? "\r" : "";
    const lines = this.buffer.slice(0, this.buffer.length - held.length).split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + held;
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        const raw = this.data.join("\n");
        let data = raw;
        try {
          data = JSON.parse(raw);
        } catch {
          // Not JSON: hand over the text.
        }
        this.dispatch(this.event || "message", data);
      }
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}
