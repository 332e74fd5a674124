// A task's artifacts: what its checks left. A JUnit report as its failed
// tests first, then the passed ones folded; coverage as a figure; images
// previewed from fetched bytes; everything else (HTML reports included)
// only as a download, never shown on this origin.

import { api, apiBlob } from "../api.js";
import { h, replace } from "../dom.js";
import { showError } from "../app.js";

function name(path) {
  return String(path).split("/").pop() || "artifact";
}

function fileUrl(id, artifact) {
  return `/tasks/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(artifact.sha256)}`;
}

async function download(id, artifact) {
  try {
    const blob = await apiBlob(fileUrl(id, artifact));
    const link = h("a", { href: URL.createObjectURL(blob), download: name(artifact.path) });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (error) {
    showError(error);
  }
}

function junit(artifact) {
  const s = artifact.summary || {};
  return [
    h("p", { class: s.failures ? "warn" : "muted" }, `${s.tests} tests, ${s.failures} failed`),
    s.failed && s.failed.length
      ? h("ul", { class: "failed-tests" }, s.failed.map((test) => h("li", { class: "failed" }, test)))
      : null,
    s.passed && s.passed.length
      ? h("details", {}, h("summary", {}, `${s.passed.length} passed`),
          h("ul", { class: "passed-tests" }, s.passed.map((test) => h("li", {}, test))))
      : null,
  ];
}

function coverage(artifact) {
  const s = artifact.summary || {};
  return h("p", {}, `${s.percent}% of ${s.lines} lines covered in ${s.files} file${s.files === 1 ? "" : "s"}`);
}

function image(id, artifact) {
  const img = h("img", { class: "artifact-image", alt: artifact.path });
  apiBlob(fileUrl(id, artifact))
    .then((blob) => { img.src = URL.createObjectURL(blob); })
    .catch(() => img.replaceWith(h("p", { class: "muted" }, "the image cannot be loaded")));
  return img;
}

function artifactCard(id, artifact) {
  const body = artifact.kind === "junit" ? junit(artifact)
    : artifact.kind === "coverage" ? coverage(artifact)
    : artifact.kind === "image" ? image(id, artifact)
    : artifact.summary && artifact.summary.note ? h("p", { class: "muted" }, artifact.summary.note)
    : null;
  return h("div", { class: "card artifact", dataset: { kind: artifact.kind } },
    h("div", { class: "row" },
      h("strong", { class: "grow" }, artifact.path),
      h("button", { class: "secondary download", onclick: () => download(id, artifact) }, `Download (${artifact.bytes} B)`)),
    body);
}

/** Fills `box` with the task's artifacts; nothing when it has none. */
export async function renderArtifacts(box, id) {
  try {
    const { artifacts } = await api(`/tasks/${encodeURIComponent(id)}/artifacts`);
    replace(box, artifacts.length ? [h("h2", {}, "Artifacts"), artifacts.map((a) => artifactCard(id, a))] : null);
  } catch (error) {
    replace(box, h("p", { class: "muted" }, error.message));
  }
}
