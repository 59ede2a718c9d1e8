// Waits for the phone's decision on the QR sign-in (long-poll; no hammering) and
// acts on every outcome. The pairing secret travels in an HttpOnly cookie.
(function () {
  "use strict";
  var card = document.getElementById("qr-card");
  if (!card) return;
  var status = document.getElementById("qr-status");
  var restart = document.getElementById("qr-restart");
  var url = card.getAttribute("data-wait-url");
  var freshUrl = card.getAttribute("data-fresh-url");
  var image = document.getElementById("qr-image");
  var link = document.getElementById("phone-link");
  var countdown = document.getElementById("qr-countdown");
  var failures = 0;
  // A new code appears by itself when one expires, a bounded number of times
  // (an abandoned tab stops asking); each is started like the page's own.
  var refreshesLeft = 10;
  var expiresAt = Date.now() + 1000 * Number(card.getAttribute("data-expires-in") || 0);
  var ticker = null;

  function tick() {
    var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    var m = Math.floor(left / 60), s = left % 60;
    countdown.textContent = left > 0
      ? "This code expires in " + m + ":" + (s < 10 ? "0" : "") + s + "."
      : "This code has expired.";
  }

  function startTicker() {
    if (ticker) clearInterval(ticker);
    tick();
    ticker = setInterval(tick, 1000);
  }

  function stopTicker() {
    if (ticker) clearInterval(ticker);
    ticker = null;
  }

  // Fetches a fresh code and shows it in place; the wait then continues on it.
  function refresh() {
    if (!freshUrl || refreshesLeft <= 0) {
      return finish("This code has expired. Show a new code to try again.", "error");
    }
    refreshesLeft -= 1;
    status.textContent = "The code expired; showing a new one…";
    fetch(freshUrl, { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (code) {
        // The SVG is our own server's QR encoding of the phone link.
        image.innerHTML = code.svg;
        link.textContent = code.phone_url;
        link.setAttribute("href", code.phone_url);
        expiresAt = Date.now() + 1000 * code.expires_in;
        card.setAttribute("data-expires-in", String(code.expires_in));
        card.setAttribute("data-refreshed", String(10 - refreshesLeft));
        startTicker();
        status.textContent = "Waiting for your phone…";
        next();
      })
      .catch(function () {
        finish("Could not get a new code. Show a new code to try again.", "error");
      });
  }

  function finish(text, kind) {
    stopTicker();
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
      case "expired": return refresh();
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

  startTicker();
  next();
})();
