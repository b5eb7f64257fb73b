// DOM helpers. Every value reaches the page through textContent or a property, never parsed
// as HTML: station ids, vendor strings and ticket titles come from chargers.

/**
 * Create an element: el("td", {className: "id", text: station.id, title: "..."}, child...).
 * Known keys: className, text, title, dataset (object), attrs (object of attributes).
 */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  if (options.title) node.title = String(options.title);
  for (const [key, value] of Object.entries(options.dataset ?? {})) {
    node.dataset[key] = String(value);
  }
  for (const [key, value] of Object.entries(options.attrs ?? {})) {
    node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** Set the text of a node only when it changed (keeps aria-live quiet). */
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/**
 * Make the rows of `tbody` match `items` (in order), keyed by `keyOf(item)`.
 * A row is rebuilt with `render(item)` (an array of cells) only when its content changed;
 * `decorate(tr, item)` sets row attributes. Changed rows flash briefly.
 */
export function syncRows(tbody, items, keyOf, render, decorate = () => {}) {
  const existing = new Map();
  for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
  const wanted = new Set();
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    wanted.add(key);
    const signature = JSON.stringify(item);
    let row = existing.get(key);
    if (!row) {
      row = el("tr", { dataset: { key } });
    }
    if (row.dataset.signature !== signature) {
      const fresh = !row.dataset.signature;
      row.replaceChildren(...render(item));
      row.dataset.signature = signature;
      decorate(row, item);
      if (!fresh) flash(row);
    }
    const anchor = previous ? previous.nextSibling : tbody.firstChild;
    if (row !== anchor) tbody.insertBefore(row, anchor);
    previous = row;
  }
  for (const [key, row] of existing) {
    if (!wanted.has(key)) row.remove();
  }
}

function flash(row) {
  row.classList.remove("changed");
  // Restart the animation (reading offsetWidth forces a style flush).
  void row.offsetWidth;
  row.classList.add("changed");
}

/** A class-name suffix from a value, restricted to letters, digits, "_" and "-". */
export function token(value) {
  return String(value ?? "").replace(/[^A-Za-z0-9_-]/g, "") || "unknown";
}
