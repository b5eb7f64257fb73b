// SLA countdown of a ticket, the same rules as diagnostics.tickets.sla_breaches:
// response (open, not acknowledged, after response_by), on_site (open or acknowledged
// after on_site_by), resolution (still active after resolution_by).

import { duration, parseTime } from "./format.js";

const ACTIVE = new Set(["open", "acknowledged", "dispatched"]);

/** The deadlines that still apply to a ticket in its status: [{name, at}] by time. */
export function pendingDeadlines(ticket) {
  const sla = ticket.sla;
  if (!sla || !ACTIVE.has(ticket.status)) return [];
  const deadlines = [];
  if (ticket.status === "open") deadlines.push({ name: "response", at: parseTime(sla.response_by) });
  if (sla.on_site_by && (ticket.status === "open" || ticket.status === "acknowledged")) {
    deadlines.push({ name: "on site", at: parseTime(sla.on_site_by) });
  }
  deadlines.push({ name: "resolution", at: parseTime(sla.resolution_by) });
  return deadlines.filter((d) => d.at !== null).sort((a, b) => a.at - b.at);
}

/**
 * What the SLA cell shows at `now`: {text, breached, title}.
 * Breached: the first missed deadline and how long ago; else the next one and the time left.
 */
export function slaCountdown(ticket, now = Date.now()) {
  if (!ticket.sla) return { text: "no SLA", breached: false, title: "" };
  const deadlines = pendingDeadlines(ticket);
  const title = deadlines
    .map((d) => `${d.name} by ${new Date(d.at).toLocaleString()}`)
    .concat(ticket.sla.policy ? [`policy ${ticket.sla.policy}`] : [])
    .join("; ");
  if (!deadlines.length) return { text: "–", breached: false, title };
  const missed = deadlines.filter((d) => now > d.at);
  if (missed.length) {
    const first = missed[0];
    const names = missed.map((d) => d.name).join(", ");
    return { text: `${names} overdue ${duration(now - first.at)}`, breached: true, title };
  }
  const next = deadlines[0];
  return { text: `${next.name} in ${duration(next.at - now)}`, breached: false, title };
}
