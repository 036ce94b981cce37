"use strict";
// The quickstart's only script (served from /assets/app.js; the pages allow no inline script).
// 1. Submits every `form[data-api]` as JSON to the /auth API and shows the answer; a sign-in
//    answered `mfa_required` continues with the second-factor form, and a change answered
//    `step_up_required` sends the user to sign in again (`data-step-up` names the way back).
// 2. The /security page: authenticator app enrolment (QR code), recovery codes, remembered
//    devices (listed, forgotten one by one or all at once).
// 3. Passkeys: sign-in (button and e-mail autofill), sign-up, and the /passkeys page.
// 4. The privacy centre (/privacy: consents, receipts, pending re-consent after a policy
//    change), the account page's consent notice and progressive-profiling prompts.
//
// Form attributes: data-api (path; a submit button's own data-api wins), data-method,
// data-json (send the fields with a DELETE too), data-then (go there on success), data-ok
// (message on success), data-reveal (id of an element to show on success), data-step-up (the
// page to come back to after signing in again), data-handler (a function of `handlers` that
// takes the answer), data-invalid (the message for `invalid_credentials`, for code forms). Fields marked data-local are not sent; a checkbox is sent as a boolean.

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

/** The form's fields as a JSON object: empty fields are left out, checkboxes are booleans. */
function formBody(form) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.hasAttribute("data-local")) continue;
    if (field.type === "checkbox") { body[field.name] = field.checked; continue; }
    if (field.type === "radio" && !field.checked) continue;
    if (field.type === "submit" || field.type === "button" || field.value === "") continue;
    body[field.name] = field.value;
  }
  return body;
}

/** A path on this site to return to, or the fallback (never another origin). */
function localPath(path, fallback) {
  return typeof path === "string" && /^\/(?![\/\\])/.test(path) && !/[\\\u0000-\u001f]/.test(path) ? path : fallback;
}

/** Sends the user to sign in again, then back to `back` (step-up: the change they asked for
 * needs a recent sign-in, or one with the second factor). The sign-in page explains why. */
function stepUp(back) {
  window.location.assign("/login?next=" + encodeURIComponent(localPath(back, "/account")) + "&step_up=1");
}

const errorCode = (answer) => (answer.data && answer.data.error) || "";

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  const submitter = event.submitter instanceof HTMLElement ? event.submitter : null;
  const option = (name) => (submitter && submitter.dataset[name]) || form.dataset[name];
  const out = form.querySelector(".out");
  const method = form.dataset.method || "POST";
  const withBody = method !== "DELETE" || form.hasAttribute("data-json");
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  try {
    const answer = await api(option("api"), method, withBody ? formBody(form) : undefined);
    if (answer.ok && answer.data && answer.data.status === "mfa_required") {
      show(out, "", true);
      showMfa(answer.data);
    } else if (answer.ok && answer.data && Array.isArray(answer.data.consent_required) && answer.data.consent_required.length) {
      // Signed in, but a material policy change needs an answer first (see /privacy).
      window.location.assign("/privacy#consent_required");
    } else if (answer.ok) {
      const handler = form.dataset.handler && handlers[form.dataset.handler];
      if (handler) { await handler(answer, form, out); return; }
      if (form.dataset.then) { window.location.assign(form.dataset.then); return; }
      show(out, option("ok") || "Done.", true);
      const reveal = option("reveal") && document.getElementById(option("reveal"));
      if (reveal) { reveal.hidden = false; const field = reveal.querySelector("input:not([type=hidden])"); if (field) field.focus(); }
      form.reset();
    } else if (errorCode(answer) === "step_up_required" && form.dataset.stepUp) {
      show(out, "For your security, sign in again first…", false, "step_up_required");
      stepUp(form.dataset.stepUp);
    } else {
      // A wrong code is `invalid_code`; a form may still word `invalid_credentials` its own
      // way (`data-invalid`), for example where a password and a code are asked together.
      const text = errorCode(answer) === "invalid_credentials" && form.dataset.invalid ? form.dataset.invalid : failure(answer);
      show(out, text, false, errorCode(answer));
    }
  } catch (_) {
    show(out, "The server cannot be reached. Try again.", false);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
});

// ---------------------------------------------------------------------------------------------
// The second factor of a sign-in (on /login and /magic-link).

/** What the code field asks for, by the API field it is sent as. */
const MFA_KINDS = {
  code: { label: "Code from your authenticator app", inputMode: "numeric", autocomplete: "one-time-code" },
  recovery_code: { label: "Recovery code", inputMode: "text", autocomplete: "off" },
  email_code: { label: "Code from the e-mail we just sent", inputMode: "numeric", autocomplete: "one-time-code" },
};
/** The factor names of the API (`factors`) and the field each one is sent as. */
const FACTOR_FIELDS = { totp: "code", recovery_code: "recovery_code", email_code: "email_code" };

function setMfaKind(kind) {
  const field = document.getElementById("mfa-code");
  const label = document.getElementById("mfa-code-label");
  const spec = MFA_KINDS[kind];
  if (!field || !spec) return;
  field.name = kind;
  field.inputMode = spec.inputMode;
  field.autocomplete = spec.autocomplete;
  field.value = "";
  if (label) label.textContent = spec.label;
  for (const radio of document.querySelectorAll('input[name="mfa-kind"]')) radio.checked = radio.value === kind;
}

/** Shows the second-factor form for an `mfa_required` answer; the other sign-in steps go. */
function showMfa(challenge) {
  const section = document.getElementById("mfa");
  if (!section) return;
  for (const step of document.querySelectorAll("[data-sign-in-step], #step-up-note")) step.hidden = true;
  document.getElementById("mfa-token").value = challenge.mfa_token;
  const offered = (challenge.factors || []).filter((f) => FACTOR_FIELDS[f]);
  for (const label of section.querySelectorAll("label[data-factor]")) label.hidden = !offered.includes(label.dataset.factor);
  document.getElementById("mfa-kinds").hidden = offered.length < 2;
  const reason = document.getElementById("mfa-reason");
  reason.textContent = challenge.reason || "";
  reason.hidden = !challenge.reason;
  setMfaKind(FACTOR_FIELDS[offered[0] || "totp"]);
  const out = section.querySelector(".out");
  show(out, offered[0] === "email_code" ? "We e-mailed you a code." : "", true);
  section.hidden = false;
  document.getElementById("mfa-code").focus();
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.name === "mfa-kind" && target.checked) {
    setMfaKind(target.value);
    document.getElementById("mfa-code").focus();
  }
});

// ---------------------------------------------------------------------------------------------
// The /security page: what `data-handler` forms do with a successful answer.

/** Shows the recovery codes (once: they are not stored in the page or anywhere else). */
function showRecoveryCodes(codes) {
  const section = document.getElementById("recovery-section");
  const list = document.getElementById("recovery-codes");
  if (!section || !list || !codes) return;
  list.replaceChildren(...codes.map((code) => {
    const li = document.createElement("li");
    const c = document.createElement("code");
    c.textContent = code;
    li.append(c);
    return li;
  }));
  section.hidden = false;
  section.scrollIntoView({ block: "nearest" });
}

/** Updates the status line and which buttons show from `GET /auth/mfa`. */
async function refreshMfaStatus() {
  const answer = await api("/auth/mfa", "GET");
  if (!answer.ok || !answer.data) return;
  const on = !!answer.data.totp;
  const status = document.getElementById("totp-status");
  status.textContent = on ? "On" : "Off";
  status.dataset.on = String(on);
  document.getElementById("recovery-left").textContent = String(answer.data.recovery_codes_left);
  document.getElementById("totp-off").hidden = on;
  document.getElementById("totp-on").hidden = !on;
  if (on) document.getElementById("totp-enrolment").hidden = true;
}

/** The QR code's SVG, parsed as SVG (never as HTML) and checked to be one `<svg>` element.
 * The page's CSP (`default-src 'none'`) blocks `data:` images; inline SVG needs no change. */
function qrCode(svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.namespaceURI !== "http://www.w3.org/2000/svg" || svg.localName !== "svg" || doc.querySelector("parsererror, script, foreignObject")) {
    return null;
  }
  return document.importNode(svg, true);
}

/** Groups the base32 key in fours for typing (apps ignore the spaces). */
const grouped = (secret) => secret.replace(/(.{4})(?=.)/g, "$1 ");

const handlers = {
  async profileSaved(answer, form, out) {
    show(out, "Saved. Thank you!", true);
    await loadProfilePrompts();
  },
  async enrolment(answer, form, out) {
    const e = answer.data;
    const qr = qrCode(e.qr_svg || "");
    const box = document.getElementById("totp-qr");
    if (qr) box.replaceChildren(qr); else box.replaceChildren();
    const secret = document.getElementById("totp-secret");
    secret.textContent = grouped(e.secret);
    secret.dataset.secret = e.secret;
    document.getElementById("totp-uri").href = e.otpauth_uri;
    document.getElementById("totp-enrolment-token").value = e.enrolment;
    show(out, "", true);
    document.getElementById("totp-off").hidden = true;
    document.getElementById("totp-enrolment").hidden = false;
    document.getElementById("totp-code").focus();
  },
  // The forms below sit in parts of the page that the new status hides: the page-wide
  // status line (#security-out) carries their message.
  async totpConfirmed(answer, form) {
    const codes = answer.data && answer.data.recovery_codes;
    if (codes) showRecoveryCodes(codes);
    form.reset();
    document.getElementById("totp-qr").replaceChildren();
    document.getElementById("totp-secret").textContent = "";
    await refreshMfaStatus();
    show(document.getElementById("security-out"), "Two-step sign-in is on. Save your recovery codes below.", true);
  },
  async recoveryCodes(answer, form, out) {
    showRecoveryCodes(answer.data && answer.data.recovery_codes);
    await refreshMfaStatus();
    show(out, "New recovery codes: the old ones no longer work.", true);
  },
  // The status is refreshed before the message shows, so a reader of the message (a person or
  // a test) sees the page already in its new state.
  async mfaChanged(answer, form) {
    document.getElementById("recovery-section").hidden = true;
    await refreshMfaStatus();
    show(document.getElementById("security-out"), form.dataset.ok || "Done.", true);
  },
  async forgotten(answer, form, out) {
    const n = (answer.data && answer.data.forgotten) || 0;
    await loadDevices(document.getElementById("devices-out"));
    show(out, (n === 1 ? "Forgot 1 remembered device." : "Forgot " + n + " remembered devices.")
      + " Every browser asks for the second factor at its next sign-in.", true);
  },
};

// ---------------------------------------------------------------------------------------------
// The /security page's remembered devices: the list from `GET /auth/mfa/devices`, and a
// "Forget" button per device (`DELETE /auth/mfa/devices/{id}`). The `cell`, `button` and
// `dateText` helpers are those of the /passkeys page below (hoisted or called after load).

function deviceRow(device, out) {
  const tr = document.createElement("tr");
  tr.className = "device";
  tr.dataset.id = device.id;
  const who = document.createElement("td");
  who.append(device.user_agent || "Unknown browser");
  if (device.current) {
    who.append(" ", Object.assign(document.createElement("span"), { className: "badge device-current", textContent: "this browser" }));
  }
  if (device.ip) who.append(Object.assign(document.createElement("div"), { className: "muted", textContent: device.ip }));
  const until = device.remember_until ? dateText(device.remember_until) : "asks for the code";
  tr.append(who, cell(dateText(device.created_at), "device-created"), cell(until, "device-remembered"));
  const actions = document.createElement("td");
  const forget = button("Forget", "secondary device-forget");
  forget.setAttribute("aria-label", "Forget " + (device.user_agent || "this browser"));
  forget.addEventListener("click", async () => {
    forget.disabled = true;
    try {
      const answer = await api("/auth/mfa/devices/" + encodeURIComponent(device.id), "DELETE");
      // 404: already forgotten (elsewhere, or it expired): the list is redrawn either way.
      if (!answer.ok && answer.status !== 404) throw new ApiFailure(answer);
      await loadDevices(out);
      show(out, device.current
        ? "Forgot this browser: it asks for the second factor at your next sign-in."
        : "Forgot that browser: it asks for the second factor at its next sign-in.", true);
    } catch (error) {
      showError(out, error);
      forget.disabled = false;
    }
  });
  actions.append(forget);
  tr.append(actions);
  return tr;
}

async function loadDevices(out) {
  const list = document.getElementById("device-list");
  if (!list) return [];
  let devices;
  try {
    devices = (await apiOrThrow("/auth/mfa/devices", "GET")).data.devices || [];
  } catch (error) {
    showError(out, error);
    return [];
  }
  list.replaceChildren(...devices.map((d) => deviceRow(d, out)));
  if (devices.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    tr.append(cell("No remembered devices.", "muted"));
    list.append(tr);
  }
  list.dataset.loaded = String(devices.length);
  return devices;
}

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

/** Where the page goes after a sign-in: its sign-in form's `data-then` (the `next` of
 * `/login?next=...`, checked by the server), else /account. */
function afterSignIn() {
  const form = document.querySelector('form[data-api="/auth/login"]');
  return localPath(form && form.dataset.then, "/account");
}

async function signInDone(out) {
  show(out, "Signed in.", true);
  window.location.assign(afterSignIn());
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

/**
 * The federated callback's answer, carried in the URL fragment (which never reaches a
 * server): a second factor to give, an account to sign in to before linking, or an error.
 */
function federationFragment() {
  if (location.hash.length < 2) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const note = document.getElementById("federation-note");
  if (params.get("mfa_token") && document.getElementById("mfa")) {
    const factors = (params.get("factors") || "").split(",").filter(Boolean);
    showMfa({ mfa_token: params.get("mfa_token"), factors });
  } else if (note && params.get("link")) {
    note.textContent = "Your " + params.get("link") + " account is not linked to an account here yet. " +
      "Sign in to your account (or create one), then link it from your account page.";
    note.hidden = false;
  } else if (note && params.get("error")) {
    note.textContent = "Signing in with that provider did not complete. Please try again or use another way to sign in.";
    note.hidden = false;
  }
  history.replaceState(null, "", location.pathname + location.search);
}

// ---------------------------------------------------------------------------------------------
// The privacy centre (/privacy) and the account page's consent notice and profile prompts.

const STATE_TEXT = {
  granted: "given", withdrawn: "withdrawn", expired: "expired", reconsent_required: "asked again",
  not_asked: "not given", not_needed: "part of the service",
};

/** Records an answer for `purpose` and redraws the page. */
async function answerConsent(purpose, granted, out) {
  const answer = await api("/auth/consents/" + encodeURIComponent(purpose), "PUT", { granted });
  if (!answer.ok) { show(out, failure(answer), false, errorCode(answer)); return; }
  show(out, (granted ? "Thank you: " : "Turned off: ") + purpose.replace(/_/g, " ") + ".", true);
  await loadConsents(out);
}

function consentRow(p, out) {
  const tr = document.createElement("tr");
  tr.dataset.purpose = p.id;
  const what = cell(p.description);
  if (p.sale_or_share) what.append(" ", Object.assign(document.createElement("span"), { className: "badge", textContent: "sale or share" }));
  tr.append(what, cell(STATE_TEXT[p.state] || p.state));
  const toggle = document.createElement("td");
  if (p.legal_basis === "consent" || p.legal_basis === "legitimate_interest") {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = p.permitted;
    box.id = "consent-" + p.id;
    box.setAttribute("aria-label", p.description);
    box.addEventListener("change", async () => { box.disabled = true; await answerConsent(p.id, box.checked, out); });
    toggle.append(box);
  } else {
    toggle.textContent = "always";
  }
  const receipt = document.createElement("td");
  if (p.record_id) {
    const a = document.createElement("a");
    a.href = "/auth/consents/receipts/" + encodeURIComponent(p.record_id);
    a.textContent = "download";
    a.className = "receipt";
    a.setAttribute("download", "consent-receipt-" + p.record_id + ".jws");
    receipt.append(a);
  }
  tr.append(toggle, receipt);
  return tr;
}

async function loadConsents(out) {
  const list = document.getElementById("consent-list");
  const answer = await api("/auth/consents", "GET");
  if (!answer.ok) { show(out, failure(answer), false, errorCode(answer)); return; }
  const data = answer.data;
  document.getElementById("policy-version").textContent = data.policy ? "version " + data.policy.version : "none";
  list.replaceChildren(...data.purposes.map((p) => consentRow(p, out)));
  const pending = document.getElementById("consent-pending");
  const items = document.getElementById("consent-pending-list");
  items.replaceChildren(...data.pending.map((p) => {
    const li = document.createElement("li");
    li.dataset.purpose = p.purpose;
    li.append(p.description + " ");
    const yes = button("I agree", "");
    yes.id = "agree-" + p.purpose;
    yes.addEventListener("click", () => answerConsent(p.purpose, true, out));
    const no = button("No, thanks", "secondary");
    no.id = "decline-" + p.purpose;
    no.addEventListener("click", () => answerConsent(p.purpose, false, out));
    li.append(yes, " ", no);
    return li;
  }));
  if (data.pending.length && data.pending[0].policy_url) {
    document.getElementById("consent-policy-link").href = localPath(data.pending[0].policy_url, "/privacy");
  }
  pending.hidden = data.pending.length === 0;
  document.body.dataset.consentsLoaded = "1";
}

/** The account page: a notice when consents wait for an answer. */
async function consentNotice() {
  const answer = await api("/auth/consents", "GET");
  if (answer.ok && answer.data && answer.data.pending.length) document.getElementById("consent-notice").hidden = false;
}

/** One input for a profile prompt, by its field kind. */
function promptField(spec) {
  const label = document.createElement("label");
  label.htmlFor = "prompt-" + spec.name;
  label.textContent = spec.label;
  let input;
  if (spec.kind.type === "choice") {
    input = document.createElement("select");
    input.append(new Option("Choose…", ""), ...spec.kind.options.map((o) => new Option(o, o)));
  } else {
    input = document.createElement("input");
    input.type = spec.kind.type === "date" ? "date" : spec.kind.type === "integer" ? "number" : "text";
    if (spec.kind.type === "text") input.maxLength = spec.kind.max_chars;
  }
  input.id = "prompt-" + spec.name;
  input.name = spec.name;
  input.dataset.kind = spec.kind.type;
  return [label, input];
}

async function loadProfilePrompts() {
  const section = document.getElementById("profile-prompts");
  const answer = await api("/auth/me?stage=engaged", "GET");
  const prompts = (answer.ok && answer.data && answer.data.user.prompts) || [];
  document.getElementById("profile-prompt-fields").replaceChildren(...prompts.flatMap(promptField));
  section.hidden = prompts.length === 0;
}

function start() {
  // A sign-in elsewhere (a provider's callback) that needs consent lands with this fragment.
  if (location.hash === "#consent_required" && location.pathname !== "/privacy") {
    window.location.assign("/privacy#consent_required");
    return;
  }
  federationFragment();
  const consents = document.getElementById("consent-list");
  if (consents) loadConsents(document.getElementById("consent-out"));
  if (document.getElementById("consent-notice")) consentNotice();
  if (document.getElementById("profile-prompts")) loadProfilePrompts();
  const signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    signIn.addEventListener("click", () => passkeySignIn(signIn));
    startConditional(document.getElementById("passkey-out"));
  }
  const signUp = document.getElementById("passkey-sign-up");
  if (signUp) signUp.addEventListener("click", () => passkeySignUp(signUp));
  if (document.getElementById("device-list")) loadDevices(document.getElementById("devices-out"));
  const add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", () => addPasskey(add));
    loadPasskeys(document.getElementById("passkeys-out"));
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
