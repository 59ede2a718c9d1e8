// Passkeys: the browser's half of WebAuthn for the sign-in and Security pages.
// The server (webauthn-rs) makes the options and checks the answers; this only
// turns base64url into bytes for navigator.credentials and back.
(function () {
  "use strict";

  function bytes(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }).buffer;
  }

  function text(buf) {
    var s = "";
    new Uint8Array(buf).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function options(url, csrf) {
    var r = await fetch(url, { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    var body = await r.json();
    if (!r.ok) throw new Error(body.error_description || "the server refused");
    return body.publicKey;
  }

  async function assertion(pk) {
    pk.challenge = bytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    var c = await navigator.credentials.get({ publicKey: pk });
    return JSON.stringify({
      id: c.id, rawId: text(c.rawId), type: c.type, extensions: {},
      response: {
        authenticatorData: text(c.response.authenticatorData),
        clientDataJSON: text(c.response.clientDataJSON),
        signature: text(c.response.signature),
        userHandle: c.response.userHandle ? text(c.response.userHandle) : null
      }
    });
  }

  async function registration(pk) {
    pk.challenge = bytes(pk.challenge);
    pk.user.id = bytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    var c = await navigator.credentials.create({ publicKey: pk });
    return {
      id: c.id, rawId: text(c.rawId), type: c.type, extensions: {},
      response: {
        attestationObject: text(c.response.attestationObject),
        clientDataJSON: text(c.response.clientDataJSON)
      }
    };
  }

  function say(form, message) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = message;
  }

  // Sign in, or re-confirm: fetch a challenge, let the passkey answer, submit the form with it.
  document.querySelectorAll("[data-passkey-assert]").forEach(function (button) {
    button.addEventListener("click", async function (ev) {
      ev.preventDefault();
      var form = button.closest("form");
      say(form, "Waiting for your passkey…");
      try {
        var pk = await options(button.dataset.passkeyAssert, form.elements.csrf.value);
        form.elements.credential.value = await assertion(pk);
        form.submit();
      } catch (e) {
        say(form, "The passkey did not answer: " + e.message);
      }
    });
  });

  // Register: fetch options, create the passkey, send it with its name, then show the list.
  document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      var csrf = form.elements.csrf.value;
      say(form, "Waiting for your passkey…");
      try {
        var pk = await options(form.dataset.passkeyRegister, csrf);
        var credential = await registration(pk);
        var r = await fetch(form.action, {
          method: "POST",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
          credentials: "same-origin",
          body: JSON.stringify({ name: form.elements.name.value, credential: credential })
        });
        if (!r.ok) throw new Error((await r.json()).error_description || "the server refused");
        window.location.assign("/security?done=added");
      } catch (e) {
        say(form, "The passkey was not added: " + e.message);
      }
    });
  });
})();
