// Terminal colours in command output, shown as styles: SGR sequences
// (`ESC [ 31 m`) become spans with classes; every other control sequence
// is dropped. The text itself is still only ever text.

import { h } from "./dom.js";

const SEQUENCE = /\u001b\[([0-9;?]*)([A-Za-z])/g;

function apply(classes, params) {
  let next = classes.slice();
  const codes = params === "" ? [0] : params.split(";").map(Number);
  for (const code of codes) {
    if (code === 0) next = [];
    else if (code === 1) next = [...next.filter((c) => c !== "ansi-bold"), "ansi-bold"];
    else if (code === 22) next = next.filter((c) => c !== "ansi-bold");
    else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) next = [...next.filter((c) => !c.startsWith("ansi-fg")), `ansi-fg-${code}`];
    else if (code === 39) next = next.filter((c) => !c.startsWith("ansi-fg"));
    else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) next = [...next.filter((c) => !c.startsWith("ansi-bg")), `ansi-bg-${code}`];
    else if (code === 49) next = next.filter((c) => !c.startsWith("ansi-bg"));
  }
  return next;
}

/** `text` as text nodes and styled spans. */
export function ansi(text) {
  const parts = [];
  let classes = [];
  let last = 0;
  for (const match of String(text).matchAll(SEQUENCE)) {
    if (match.index > last) parts.push(piece(text.slice(last, match.index), classes));
    if (match[2] === "m") classes = apply(classes, match[1]);
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(piece(text.slice(last), classes));
  return parts;
}

function piece(text, classes) {
  return classes.length ? h("span", { class: classes.join(" ") }, text) : text;
}
