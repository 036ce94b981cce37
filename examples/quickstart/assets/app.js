"use strict";
// The quickstart's only script (served from /assets/app.js; the pages allow no inline script).
// 1. Submits every `form[data-api]` as JSON to the /auth API and shows the answer.
// 2. Passkeys: sign-in (button and e-mail autofill), sign-up, and the /passkeys page.

/** Writes a message into a `.out` element. */
function show(out, text, ok, code) {
  if (!out) return;
  out.textContent = text;
  out.className = ok ? "out ok" : "out err";
  // The API's error code (e.g. "verification_required"), for scripts and tests.
  if (code) out.dataset.error = code; else delete out.dataset.error;
}

/** Sends JSON to the API; resolves to { ok, status, data } (data is null for an empty body). */
async function api(path, method, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try { data = await response.json(); } catch (_) { /* 204 has no body */ }
  return { ok: response.ok, status: response.status, data };
}

/** The message of a failed answer. */
function failure(answer) {
  return (answer.data && answer.data.message) || "The request failed (" + answer.status + ").";
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  const out = form.querySelector(".out");
  const method = form.dataset.method || "POST";
  const body = {};
  for (const [key, value] of new FormData(form)) { if (value !== "") body[key] = value; }
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  try {
    const answer = await api(form.dataset.api, method, method === "DELETE" ? undefined : body);
    if (answer.ok) {
      if (form.dataset.then) { window.location.assign(form.dataset.then); return; }
      show(out, form.dataset.ok || "Done.", true);
      form.reset();
    } else {
      show(out, failure(answer), false, answer.data && answer.data.error);
    }
  } catch (_) {
    show(out, "The server cannot be reached. Try again.", false);
  } finally {
    if (button) button.disabled = false;
  }
});

// ---------------------------------------------------------------------------------------------
// WebAuthn helpers. The API speaks the WebAuthn Level 3 JSON forms (base64url strings); the
// browser's own parse*FromJSON / toJSON are used where it has them, else these fallbacks.

const b64url = {
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  },
};

const descriptors = (list) => (list || []).map((c) => ({ ...c, id: b64url.decode(c.id) }));

function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return { ...json, challenge: b64url.decode(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
}

/** `PublicKeyCredential.toJSON()`, or the same shape built by hand. */
function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const r = credential.response;
  const out = {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: { clientDataJSON: b64url.encode(r.clientDataJSON) },
  };
  if (r.attestationObject) {
    out.response.attestationObject = b64url.encode(r.attestationObject);
    if (typeof r.getAuthenticatorData === "function") out.response.authenticatorData = b64url.encode(r.getAuthenticatorData());
    if (typeof r.getPublicKey === "function" && r.getPublicKey()) out.response.publicKey = b64url.encode(r.getPublicKey());
    if (typeof r.getPublicKeyAlgorithm === "function") out.response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    if (typeof r.getTransports === "function") out.response.transports = r.getTransports();
  } else {
    out.response.authenticatorData = b64url.encode(r.authenticatorData);
    out.response.signature = b64url.encode(r.signature);
    if (r.userHandle) out.response.userHandle = b64url.encode(r.userHandle);
  }
  return out;
}

const passkeysSupported = () => typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

/** What to tell the user when the browser's ceremony fails (cancelled, timed out, refused). */
function ceremonyMessage(error) {
  if (error && error.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
  if (error && error.name === "InvalidStateError") return "This device already holds a passkey for this account.";
  return "Your browser could not use a passkey" + (error && error.message ? ": " + error.message : ".");
}

/** Thrown for an API answer that is not 2xx, carrying the answer. */
class ApiFailure extends Error {
  constructor(answer) { super(failure(answer)); this.answer = answer; }
}

async function apiOrThrow(path, method, body) {
  const answer = await api(path, method, body);
  if (!answer.ok) throw new ApiFailure(answer);
  return answer;
}

/** Runs `navigator.credentials.get` for options from `startPath`, posts to `finishPath`. */
async function assertWith(startPath, finishPath, startBody, extra) {
  const options = (await apiOrThrow(startPath, "POST", startBody)).data;
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options), ...(extra || {}) });
  if (!credential) throw new Error("No passkey was chosen.");
  return apiOrThrow(finishPath, "POST", { credential: credentialJSON(credential) });
}

/** Runs `navigator.credentials.create` for options from `startPath`, posts to `finishPath`. */
async function createWith(startPath, finishPath, startBody, name) {
  const options = (await apiOrThrow(startPath, "POST", startBody)).data;
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
  if (!credential) throw new Error("No passkey was created.");
  const body = { credential: credentialJSON(credential) };
  if (name) body.name = name;
  return apiOrThrow(finishPath, "POST", body);
}

/** Shows an error from an API answer or a browser ceremony. */
function showError(out, error) {
  if (error instanceof ApiFailure) show(out, error.message, false, error.answer.data && error.answer.data.error);
  else if (error instanceof DOMException) show(out, ceremonyMessage(error), false);
  else if (error instanceof TypeError) show(out, "The server cannot be reached. Try again.", false);
  else show(out, (error && error.message) || "Something went wrong.", false);
}

// ---------------------------------------------------------------------------------------------
// Sign-in page: the passkey button, and passkeys offered in the e-mail field's autofill.

/** The autofill (conditional) request in flight: its AbortController and its settling. */
let conditional = null;

async function signInDone(out) {
  show(out, "Signed in.", true);
  window.location.assign("/account");
}

function startConditional(out) {
  const controller = new AbortController();
  // Resolves to "aborted" when it ended without a passkey (cancelled by the button, autofill
  // unavailable), else to "handled" once its sign-in went through or the refusal is shown.
  const run = async () => {
    if (!passkeysSupported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return "aborted";
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return "aborted";
    try {
      await assertWith("/auth/passkeys/login/start", "/auth/passkeys/login/finish", {},
        { mediation: "conditional", signal: controller.signal });
      await signInDone(out);
    } catch (error) {
      // Cancelled by the button (Chromium rejects with the abort reason or NotAllowedError),
      // or the browser gave up on autofill: nothing to tell, and the button still works. Only
      // the server's answer about a passkey already picked is shown.
      if (!(error instanceof ApiFailure)) return "aborted";
      showError(out, error);
    }
    return "handled";
  };
  conditional = { controller, settled: run() };
}

async function passkeySignIn(button) {
  const out = document.getElementById("passkey-out");
  const emailField = document.getElementById("email");
  const email = emailField ? emailField.value.trim() : "";
  if (!passkeysSupported()) { show(out, "This browser does not support passkeys.", false); return; }
  button.disabled = true;
  try {
    // One WebAuthn request at a time: cancel the autofill one and wait until the browser has
    // let go of it, or the new request can be refused as "already pending".
    if (conditional) {
      const pending = conditional;
      conditional = null;
      pending.controller.abort();
      // A passkey already picked from autofill has signed in (or its refusal is shown).
      if ((await pending.settled) === "handled") return;
    }
    // With an address: the account's passkeys as an allow-list. Without: a discoverable passkey.
    await assertWith("/auth/passkeys/login/start", "/auth/passkeys/login/finish", email ? { email } : {});
    await signInDone(out);
  } catch (error) {
    showError(out, error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Registration page: sign up with a passkey instead of a password.

async function passkeySignUp(button) {
  const out = document.getElementById("passkey-out");
  const emailField = document.getElementById("email");
  if (!passkeysSupported()) { show(out, "This browser does not support passkeys.", false); return; }
  if (!emailField || !emailField.reportValidity()) return;
  button.disabled = true;
  try {
    await createWith("/auth/passkeys/signup/start", "/auth/passkeys/signup/finish",
      { email: emailField.value.trim(), profile: {} });
    show(out, "Check your inbox: we sent you a link to confirm your address. Then sign in with your passkey.", true);
  } catch (error) {
    showError(out, error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The /passkeys page: list, add, rename, delete.

/** Runs `action`; when the API wants a recent sign-in (`step_up_required`), confirms with one
 * of the account's passkeys (step-up) and runs it once more. */
async function withStepUp(out, action) {
  try {
    return await action();
  } catch (error) {
    const code = error instanceof ApiFailure && error.answer.data && error.answer.data.error;
    if (code !== "step_up_required") throw error;
  }
  const list = await api("/auth/passkeys", "GET");
  if (!list.ok || !list.data || !(list.data.passkeys || []).length) {
    throw new Error("For your security, sign out and sign in again first.");
  }
  show(out, "Confirm it is you with one of your passkeys.", true);
  await assertWith("/auth/passkeys/step-up/start", "/auth/passkeys/step-up/finish", {});
  return action();
}

const dateText = (value) => (value ? new Date(value).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "never");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(text, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  return b;
}

function passkeyRow(passkey, out) {
  const tr = document.createElement("tr");
  tr.className = "passkey";
  tr.dataset.id = passkey.id;
  const name = document.createElement("td");
  const label = document.createElement("strong");
  label.className = "passkey-label";
  label.textContent = passkey.name;
  const kind = document.createElement("span");
  kind.className = "badge passkey-kind";
  kind.textContent = passkey.synced ? "synced" : "device-bound";
  name.append(label, " ", kind);
  tr.append(name, cell(dateText(passkey.created_at), "passkey-created"), cell(dateText(passkey.last_used_at), "passkey-used"));

  const actions = document.createElement("td");
  const rename = document.createElement("input");
  rename.className = "passkey-new-name";
  rename.setAttribute("aria-label", "New name for " + passkey.name);
  rename.maxLength = 64;
  rename.value = passkey.name;
  const renameButton = button("Rename", "passkey-rename");
  const deleteButton = button("Delete", "danger passkey-delete");
  renameButton.addEventListener("click", async () => {
    renameButton.disabled = true;
    try {
      const answer = await withStepUp(out, () =>
        apiOrThrow("/auth/passkeys/" + encodeURIComponent(passkey.id), "PATCH", { name: rename.value.trim() }));
      show(out, "Renamed to \u201c" + answer.data.passkey.name + "\u201d.", true);
      await loadPasskeys(out);
    } catch (error) {
      showError(out, error);
    } finally {
      renameButton.disabled = false;
    }
  });
  deleteButton.addEventListener("click", async () => {
    deleteButton.disabled = true;
    try {
      await withStepUp(out, () => apiOrThrow("/auth/passkeys/" + encodeURIComponent(passkey.id), "DELETE"));
      show(out, "Deleted \u201c" + passkey.name + "\u201d.", true);
      await loadPasskeys(out);
    } catch (error) {
      showError(out, error);
    } finally {
      deleteButton.disabled = false;
    }
  });
  actions.append(rename, renameButton, " ", deleteButton);
  tr.append(actions);
  return tr;
}

async function loadPasskeys(out) {
  const list = document.getElementById("passkey-list");
  if (!list) return [];
  let passkeys;
  try {
    passkeys = (await apiOrThrow("/auth/passkeys", "GET")).data.passkeys || [];
  } catch (error) {
    showError(out, error);
    return [];
  }
  list.replaceChildren(...passkeys.map((p) => passkeyRow(p, out)));
  if (passkeys.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    tr.append(cell("No passkeys yet.", "muted"));
    list.append(tr);
  }
  list.dataset.loaded = String(passkeys.length);
  return passkeys;
}

/** Adds a passkey (after a passkey step-up when the sign-in is not recent). */
async function addPasskey(button) {
  const out = document.getElementById("passkeys-out");
  const nameField = document.getElementById("passkey-name");
  const name = nameField ? nameField.value.trim() : "";
  if (!passkeysSupported()) { show(out, "This browser does not support passkeys.", false); return; }
  button.disabled = true;
  try {
    const options = await withStepUp(out, () => apiOrThrow("/auth/passkeys/register/start", "POST", {}));
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options.data) });
    if (!credential) throw new Error("No passkey was created.");
    const body = { credential: credentialJSON(credential) };
    if (name) body.name = name;
    const answer = await apiOrThrow("/auth/passkeys/register/finish", "POST", body);
    show(out, "Added \u201c" + answer.data.passkey.name + "\u201d.", true);
    if (nameField) nameField.value = "";
    await loadPasskeys(out);
  } catch (error) {
    showError(out, error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------

function start() {
  const signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    signIn.addEventListener("click", () => passkeySignIn(signIn));
    startConditional(document.getElementById("passkey-out"));
  }
  const signUp = document.getElementById("passkey-sign-up");
  if (signUp) signUp.addEventListener("click", () => passkeySignUp(signUp));
  const add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", () => addPasskey(add));
    loadPasskeys(document.getElementById("passkeys-out"));
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
