// Which repository the person is looking at: remembered on this device,
// "" for all of them.

const KEY = "pushpals.repo";

/** The repository chosen on this device, "" for all. */
export function chosenRepo() {
  return localStorage.getItem(KEY) || "";
}

/** Remembers the choice ("" for all). */
export function chooseRepo(name) {
  if (name) localStorage.setItem(KEY, name);
  else localStorage.removeItem(KEY);
}

/** The served repositories' names, from `/status`. */
export function repoNames(status) {
  return (status.repos || []).map((repo) => repo.name);
}
