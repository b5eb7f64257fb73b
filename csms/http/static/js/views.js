// Rendering of the four parts of the dashboard from API data (text only, see dom.js).

import { el, setText, syncRows, token } from "./dom.js";
import { ago, localTime, percent, words } from "./format.js";
import { slaCountdown } from "./sla.js";

const $ = (id) => document.getElementById(id);

const BUSY = new Set([
  "Occupied", "Charging", "Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved",
]);
const PRIORITY_ORDER = { P1: 1, P2: 2, P3: 3, P4: 4 };

/** Tickets by id, for the SLA countdown ticker. */
const ticketsById = new Map();

function timeAgo(value) {
  return el("time", {
    text: ago(value),
    title: localTime(value),
    attrs: value ? { datetime: value } : {},
    dataset: value ? { ago: value } : {},
  });
}

function count(value) {
  return value === null || value === undefined ? "–" : String(value);
}

export function renderFleet(fleet) {
  setText($("tile-online"), count(fleet.online));
  setText($("tile-offline"), count(fleet.offline));
  setText($("tile-faulted"), count(fleet.faulted));
  $("tile-faulted").classList.toggle("nonzero", Boolean(fleet.faulted));
  const open = fleet.open_tickets ?? {};
  for (const priority of ["P1", "P2", "P3", "P4"]) {
    setText($(`tile-${priority.toLowerCase()}`), count(open[priority] ?? 0));
  }
  setText($("tile-remote"), percent(fleet.remote_fix_share));
  const decided = (fleet.fixed_remotely ?? 0) + (fleet.ticketed_runs ?? 0);
  setText($("tile-remote-detail"), decided ? `${fleet.fixed_remotely} of ${decided} runs` : "no runs yet");
}

function protocolName(protocol) {
  if (!protocol) return "–";
  return /^\d/.test(protocol) ? `OCPP ${protocol}` : protocol;
}

/** "station" (1.6 connector 0), "2" (1.6 connector 2, or 2.0.1 EVSE 2), "2.2" (EVSE 2,
 * connector 2). */
function connectorLabel(connector) {
  const evse = connector.evse_id ?? 0;
  const id = connector.connector_id ?? 0;
  if (!evse) return id ? String(id) : "station";
  return id > 1 ? `${evse}.${id}` : String(evse);
}

/** The connectors worth showing: a station-wide entry only when it says something. */
function shownConnectors(connectors) {
  const list = connectors ?? [];
  return list.filter((c) => list.length === 1 || (c.evse_id ?? 0) !== 0
    || (c.connector_id ?? 0) !== 0 || c.status !== "Available");
}

function connectorClass(status) {
  if (status === "Available") return "available";
  if (status === "Faulted") return "faulted";
  if (status === "Unavailable") return "unavailable";
  if (BUSY.has(status)) return "busy";
  return "other";
}

function connectorChips(connectors) {
  const chips = el("div", { className: "chips" });
  for (const connector of shownConnectors(connectors)) {
    const error = connector.error_code && connector.error_code !== "NoError" ? connector.error_code : "";
    chips.append(el("span", {
      className: `chip status-${connectorClass(connector.status)}`,
      text: `${connectorLabel(connector)}: ${connector.status ?? "?"}${error ? ` · ${error}` : ""}`,
      title: connector.updated_at ? `since ${localTime(connector.updated_at)}` : "",
    }));
  }
  return chips;
}

function activeRun(run) {
  if (!run) return [el("span", { text: "–", className: "muted" })];
  const step = run.current_step ? words(run.current_step) : words(run.phase);
  return [
    el("span", { className: "step", text: step }),
    el("span", { className: "muted", text: ` · ${words(run.fault_class)}` }),
  ];
}

export function renderStations(items, total) {
  const body = $("stations-body");
  syncRows(body, items, (s) => s.id, (s) => [
    el("td", {
      className: "id",
      text: s.id,
      title: [s.vendor, s.model, s.firmware_version && `fw ${s.firmware_version}`, s.site, s.location]
        .filter(Boolean).join(" · "),
    }),
    el("td", {}, el("span", { className: `badge state-${token(s.state)}`, text: words(s.state) })),
    el("td", { text: protocolName(s.protocol) }),
    el("td", {}, connectorChips(s.connectors)),
    el("td", {}, ...activeRun(s.active_run)),
    el("td", { text: s.open_tickets ? String(s.open_tickets) : "–" }),
    el("td", { className: "muted" }, timeAgo(s.last_seen_at)),
  ], (row, s) => {
    row.dataset.stationId = s.id;
    row.dataset.state = s.state ?? "";
  });
  $("stations-empty").hidden = items.length > 0;
  setText($("stations-count"), total > items.length ? `(${items.length} of ${total})` : `(${total})`);
}

function stepChips(steps) {
  const chips = el("div", { className: "chips" });
  for (const step of steps ?? []) {
    chips.append(el("span", {
      className: `chip result-${token(step.result)}`,
      text: `${words(step.action)}: ${words(step.result)}`,
      title: [step.outcome, step.detail].filter(Boolean).join(" · "),
    }));
  }
  if (!chips.childElementCount) chips.append(el("span", { className: "muted", text: "none yet" }));
  return chips;
}

export function renderRuns(items) {
  syncRows($("runs-body"), items, (r) => r.run_id, (r) => [
    el("td", { className: "id", text: r.station_id, title: `connector ${r.connector}` }),
    el("td", { text: words(r.fault_class), title: r.detection ? `detected by ${r.detection}` : "" }),
    el("td", { text: words(r.phase) }),
    el("td", {}, el("span", { className: "step", text: r.current_step ? words(r.current_step) : "–" })),
    el("td", {}, stepChips(r.steps)),
    el("td", { className: "muted" }, timeAgo(r.started_at)),
  ], (row, r) => {
    row.dataset.runId = r.run_id;
    row.dataset.stationId = r.station_id;
  });
  $("runs-empty").hidden = items.length > 0;
  setText($("runs-count"), `(${items.length})`);
}

function slaCell(ticket) {
  const view = slaCountdown(ticket);
  return el("span", {
    className: `sla${view.breached ? " breached" : ""}`,
    text: view.text,
    title: view.title,
    dataset: { ticketId: ticket.ticket_id },
  });
}

export function renderTickets(items) {
  const sorted = [...items].sort((a, b) =>
    (PRIORITY_ORDER[a.priority] ?? 9) - (PRIORITY_ORDER[b.priority] ?? 9)
    || String(a.opened_at).localeCompare(String(b.opened_at)));
  ticketsById.clear();
  for (const ticket of sorted) ticketsById.set(ticket.ticket_id, ticket);
  syncRows($("tickets-body"), sorted, (t) => t.ticket_id, (t) => [
    el("td", {}, el("span", { className: `badge priority-${token(t.priority)}`, text: t.priority })),
    el("td", { className: "id", text: t.station_id, title: `connector ${t.connector}` }),
    el("td", { text: t.title, title: words(t.fault_class) }),
    el("td", { text: words(t.status) }),
    el("td", {}, slaCell(t)),
  ], (row, t) => {
    row.dataset.ticketId = t.ticket_id;
    row.dataset.stationId = t.station_id;
  });
  tick();
  $("tickets-empty").hidden = items.length > 0;
  setText($("tickets-count"), `(${items.length})`);
}

/** Every second: relative times and SLA countdowns. */
export function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll("time[data-ago]")) {
    setText(node, ago(node.dataset.ago, now));
  }
  for (const node of document.querySelectorAll(".sla[data-ticket-id]")) {
    const ticket = ticketsById.get(node.dataset.ticketId);
    if (!ticket) continue;
    const view = slaCountdown(ticket, now);
    setText(node, view.text);
    node.classList.toggle("breached", view.breached);
    node.closest("tr")?.classList.toggle("breached", view.breached);
  }
}
