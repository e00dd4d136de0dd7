// Passkeys (WebAuthn): sign in with one on /mfa, add one on /mfa/passkeys.
// The server sends the options as JSON with base64url binary fields and
// takes the credential back in the same encoding.
(function () {
  "use strict";

  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64u(buf) {
    if (!buf) return undefined;
    const bytes = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body, type) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": type, "Accept": "application/json" },
      body: body,
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON: signed out, or an error page */ }
    if (!resp.ok || !data) {
      throw new Error(data && data.error && data.error.message ? data.error.message : "The server refused the request (" + resp.status + "). Reload the page and try again.");
    }
    return data;
  }

  function explain(err) {
    if (err && err.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again, or use a code.";
    if (err && err.name === "InvalidStateError") return "This passkey is already registered.";
    return (err && err.message) || "Something went wrong with the passkey.";
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: fromB64u(c.id) }); });
  }

  async function signIn(button, status) {
    const next = button.dataset.next || "/";
    status.textContent = "Waiting for your passkey…";
    const opts = await post("/mfa/passkey/begin", "", "application/x-www-form-urlencoded");
    const pk = opts.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    const cred = await navigator.credentials.get({ publicKey: pk });
    const r = cred.response;
    const body = JSON.stringify({
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData),
        signature: toB64u(r.signature), userHandle: toB64u(r.userHandle),
      },
    });
    const done = await post("/mfa/passkey/finish?next=" + encodeURIComponent(next), body, "application/json");
    status.textContent = "Signed in.";
    location.assign(done.next || "/");
  }

  async function register(form, status) {
    status.textContent = "Follow your browser's prompt to create the passkey…";
    const opts = await post("/mfa/passkeys/begin", new URLSearchParams(new FormData(form)).toString(), "application/x-www-form-urlencoded");
    const pk = opts.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    const cred = await navigator.credentials.create({ publicKey: pk });
    const r = cred.response;
    const body = JSON.stringify({
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
    });
    const done = await post("/mfa/passkeys/finish", body, "application/json");
    status.textContent = "Passkey added.";
    location.assign(done.next || "/mfa/passkeys?added=1");
  }

  function run(control, status, fn) {
    control.disabled = true;
    fn().catch(function (err) {
      status.textContent = explain(err);
      control.disabled = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const supported = !!(window.PublicKeyCredential && navigator.credentials);
    const section = document.getElementById("passkey-signin");
    const use = document.getElementById("passkey-use");
    if (section && use && supported) {
      section.hidden = false;
      use.addEventListener("click", function () {
        const status = document.getElementById("passkey-status");
        run(use, status, function () { return signIn(use, status); });
      });
    }
    const form = document.getElementById("passkey-add-form");
    if (form) {
      const status = document.getElementById("passkey-status");
      const add = document.getElementById("passkey-add");
      if (!supported) {
        add.disabled = true;
        status.textContent = "This browser cannot use passkeys.";
        return;
      }
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        run(add, status, function () { return register(form, status); });
      });
    }
  });
})();
