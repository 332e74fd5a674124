// Pairing: trade the one-time code from `pushpals pair` for a device token.

import { api, setToken } from "../api.js";
import { h, replace, visible } from "../dom.js";

export function pairView(main, code, done) {
  const codeInput = h("input", { id: "pair-code", name: "code", autocomplete: "one-time-code", value: code, required: true });
  const nameInput = h("input", { id: "pair-device", name: "device", value: "phone", required: true, maxlength: 64 });
  const status = h("p", { class: "muted", role: "status" });
  const form = h(
    "form",
    { class: "card", onsubmit: async (event) => {
      event.preventDefault();
      status.textContent = "Pairing…";
      try {
        const paired = await api("/pair", { method: "POST", body: { code: codeInput.value, device: nameInput.value } });
        setToken(paired.token);
        status.textContent = visible(`Paired as ${paired.name} (${paired.scopes}).`);
        done();
      } catch (error) {
        status.textContent = error.message;
      }
    } },
    h("h1", {}, "Pair this device"),
    h("p", { class: "muted" }, "Run `pushpals pair` on the server and enter the code it shows (or scan its QR code)."),
    h("label", { for: "pair-code" }, "Pairing code"),
    codeInput,
    h("label", { for: "pair-device" }, "Name of this device"),
    nameInput,
    h("p", {}, h("button", { type: "submit" }, "Pair")),
    status,
  );
  replace(main, form);
  return {};
}
