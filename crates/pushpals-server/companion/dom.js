// Building DOM nodes. Text is always set as text, never parsed as HTML:
// everything shown here can come from a repository, a model or a command.
// And text is shown exactly: bidirectional controls, zero-width and other
// invisible or control characters appear as escapes (\u{202E}), so a
// command on an approval card reads as what will run.

// The same set as pushpals_core::visible::is_hidden.
const HIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028\u2029\u202A-\u202E\u2060-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}\u{E0000}-\u{E007F}]/gu;

/** Text with hidden characters written as \u{XXXX}. */
export function visible(text) {
  return String(text).replace(HIDDEN, (c) =>
    `\\u{${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}}`);
}

/** h("div", {class: "card"}, "text", child) */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/**
 * `fn` run at most once every `ms`, at the end of the window the first call
 * opened: a steady stream of calls never postpones it (a debounce would
 * wait for the stream to stop).
 */
export function throttled(fn, ms) {
  let timer = null;
  const run = () => {
    timer = null;
    fn();
  };
  const call = () => {
    if (timer === null) timer = setTimeout(run, ms);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}

/**
 * Runs `request` with `buttons` disabled until it settles: a second tap
 * while the first is on its way does nothing.
 */
export async function inFlight(buttons, request) {
  if (buttons.some((b) => b.disabled)) return;
  for (const b of buttons) b.disabled = true;
  try {
    await request();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** A state pill. */
export function statePill(state) {
  return h("span", { class: `state ${state}` }, state.replaceAll("_", " "));
}

/** "$0.0123" from micro-dollars. */
export function cost(usage) {
  if (!usage || !usage.model_calls) return "";
  return `$${(usage.cost_micros / 1e6).toFixed(4)}`;
}
