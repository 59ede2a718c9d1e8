// Waits for the phone's decision on the QR sign-in (long-poll; no hammering) and
// acts on every outcome. The pairing secret travels in an HttpOnly cookie.
(function () {
  "use strict";
  var card = document.getElementById("qr-card");
  if (!card) return;
  var status = document.getElementById("qr-status");
  var restart = document.getElementById("qr-restart");
  var url = card.getAttribute("data-wait-url");
  var failures = 0;

  function finish(text, kind) {
    status.textContent = text;
    status.className = "status " + (kind || "");
    card.classList.add("finished");
    restart.hidden = false;
  }

  function handle(res, body) {
    if (res.status === 404) {
      return finish("QR sign-in is turned off for this app right now. Sign in another way, or ask an admin.", "error");
    }
    if (!res.ok) throw new Error("HTTP " + res.status);
    failures = 0;
    switch (body.status) {
      case "approved":
        status.textContent = "Approved. Signing you in…";
        if (body.redirect_to) { window.location.replace(body.redirect_to); }
        else { finish("Signed in. You can close this page.", "ok"); }
        return;
      case "pending": return next();
      case "denied": return finish("The sign-in was cancelled on the phone.", "error");
      case "cancelled": return finish("This sign-in was cancelled.", "error");
      case "expired": return finish("This code has expired.", "error");
      default: return finish("This code was already used.", "error");
    }
  }

  function next() {
    fetch(url, { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) { return res.json().catch(function () { return {}; }).then(function (b) { return handle(res, b); }); })
      .catch(function () {
        // The server is unreachable for a moment: say so, back off, try again.
        failures += 1;
        status.textContent = "Connection lost, retrying…";
        setTimeout(next, Math.min(1000 * failures, 5000));
      });
  }

  next();
})();
