// Building DOM nodes. Text is always set as text, never parsed as HTML:
// everything shown here can come from a repository, a model or a command.

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
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
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
