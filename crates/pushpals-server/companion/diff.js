// A unified diff for review with thumbs: a file list with +/− counts that
// jumps to each file, files collapsed beyond a size, line numbers on both
// sides, colours across the whole scrolled width, and the changed words of
// a changed line marked.

import { h } from "./dom.js";

/** Files with more changed lines than this start collapsed. */
const COLLAPSE_OVER = 120;

/** Parses `git diff` text into files with their numbered lines (the
 * changed words are marked when the files are shown). */
export function parseDiff(text) {
  const files = [];
  let file = null;
  let oldLine = 0;
  let newLine = 0;
  for (const line of (text || "").split("\n")) {
    if (line.startsWith("diff --git ")) {
      const names = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      file = { name: names ? names[2] : line.slice(11), from: names ? names[1] : "", rows: [], added: 0, removed: 0, note: "" };
      files.push(file);
      continue;
    }
    if (!file) continue;
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      oldLine = Number(hunk[1]);
      newLine = Number(hunk[2]);
      file.rows.push({ kind: "hunk", text: line });
    } else if (file.rows.length === 0) {
      // The header: new, deleted, renamed or binary.
      if (line.startsWith("new file")) file.note = "added";
      else if (line.startsWith("deleted file")) file.note = "deleted";
      else if (line.startsWith("rename from")) file.note = `renamed from ${file.from}`;
      else if (line.startsWith("Binary files")) file.note = "binary";
    } else if (line.startsWith("+")) {
      file.added += 1;
      file.rows.push({ kind: "add", text: line.slice(1), newNo: newLine++ });
    } else if (line.startsWith("-")) {
      file.removed += 1;
      file.rows.push({ kind: "del", text: line.slice(1), oldNo: oldLine++ });
    } else if (line.startsWith(" ")) {
      file.rows.push({ kind: "ctx", text: line.slice(1), oldNo: oldLine++, newNo: newLine++ });
    } else if (line.startsWith("\\")) {
      file.rows.push({ kind: "note", text: line });
    }
  }
  return files;
}

/** "3 files, +10 −2" for a parsed diff. */
export function diffStat(files) {
  const added = files.reduce((n, f) => n + f.added, 0);
  const removed = files.reduce((n, f) => n + f.removed, 0);
  return `${files.length} ${files.length === 1 ? "file" : "files"}, +${added} −${removed}`;
}

// Words, spaces and single punctuation marks: what a changed line is
// compared by.
function tokens(text) {
  return text.match(/\w+|\s+|[^\w\s]/gu) || [];
}

// A run of removed lines followed by as many added ones is a change: the
// tokens between their common start and common end are marked.
function markWords(files) {
  for (const file of files) {
    const rows = file.rows;
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].kind !== "del") continue;
      let dels = i;
      while (dels < rows.length && rows[dels].kind === "del") dels++;
      let adds = dels;
      while (adds < rows.length && rows[adds].kind === "add") adds++;
      if (adds - dels === dels - i) {
        for (let k = 0; k < dels - i; k++) pairWords(rows[i + k], rows[dels + k]);
      }
      i = adds - 1;
    }
  }
}

function pairWords(removed, added) {
  const a = tokens(removed.text);
  const b = tokens(added.text);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  // Lines with nothing in common are shown whole, not as one big mark.
  if (start === 0 && end === 0) return;
  const split = (list) => [list.slice(0, start).join(""), list.slice(start, list.length - end).join(""), list.slice(list.length - end).join("")];
  removed.words = split(a);
  added.words = split(b);
}

function lineText(row) {
  if (!row.words) return row.text || " ";
  const [before, changed, after] = row.words;
  return [before, changed ? h("mark", { class: "word" }, changed) : null, after];
}

function fileBlock(file, index, count) {
  const body = h(
    "div",
    { class: "diff-body" },
    file.rows.map((row) =>
      h("div", { class: `diff-row ${row.kind}` },
        h("span", { class: "no", "aria-hidden": "true" }, row.oldNo ?? ""),
        h("span", { class: "no", "aria-hidden": "true" }, row.newNo ?? ""),
        h("span", { class: "code" }, row.kind === "add" ? "+" : row.kind === "del" ? "−" : " ", lineText(row))),
    ),
  );
  const next = index + 1 < count
    ? h("a", { class: "next-file", href: `#diff-file-${index + 1}`, onclick: (e) => { e.preventDefault(); jump(index + 1); } }, "Next file")
    : null;
  return h(
    "details",
    { class: "diff-file card", id: `diff-file-${index}`, open: file.added + file.removed <= COLLAPSE_OVER },
    h("summary", {},
      h("span", { class: "path" }, file.name),
      " ",
      h("span", { class: "counts" }, h("span", { class: "plus" }, `+${file.added}`), " ", h("span", { class: "minus" }, `−${file.removed}`)),
      file.note ? h("span", { class: "muted" }, ` ${file.note}`) : null,
      file.added + file.removed > COLLAPSE_OVER ? h("span", { class: "muted large-note" }, " (large: tap to show)") : null),
    h("div", { class: "diff-lines" }, body),
    next,
  );
}

// Opens a file and brings it into view (links inside the page would
// change the screen's fragment).
function jump(index) {
  const target = document.getElementById(`diff-file-${index}`);
  if (!target) return;
  target.open = true;
  target.scrollIntoView({ block: "start" });
}

/** Parsed files as a file list and one collapsible block per file. */
export function diffView(files) {
  if (!files.length) return h("p", { class: "muted" }, "No changes.");
  markWords(files);
  const list = h(
    "ol",
    { class: "diff-list card", id: "diff-files" },
    h("li", { class: "muted" }, diffStat(files)),
    files.map((file, index) =>
      h("li", {},
        h("a", { href: `#diff-file-${index}`, onclick: (e) => { e.preventDefault(); jump(index); } },
          h("span", { class: "path" }, file.name), " ",
          h("span", { class: "plus" }, `+${file.added}`), " ", h("span", { class: "minus" }, `−${file.removed}`)))),
  );
  return [list, files.map((file, index) => fileBlock(file, index, files.length))];
}
