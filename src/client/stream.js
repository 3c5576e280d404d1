// axum-autoreload client, the part that page.js and worker.js share: the reload
// stream. src/client.rs serves each of them after this file, inside one function,
// and defines two tables before it, written once in Rust (src/protocol.rs): `EVENT`,
// the stream's event names ({hello: "hello", reload: "reload", ...}), and `PATH`,
// the paths the layer answers ({stream: "/auto_refresh", worker: ..., ...}).

// What the page and the worker say when the stream is down (not an event of the
// stream).
var DOWN = "down";
// What the worker answers a tab's "hi" with, at once: a tab that hears nothing
// from its worker falls back to a stream of its own.
var JOINED = "joined";
var MAX_BACKOFF_MS = 10000;
// What a tab asks its worker for a page with ({type: PAGE, id, url}), and what the
// worker answers ({type: PAGE, id, answer}).
var PAGE = "page";

// Fetches the page at `url` for a morph: {html}, {why} when the answer cannot be
// morphed in (not a 200 text/html, or a redirect), or {down} when no server
// answered.
function fetchPage(url) {
  return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
    .then(
      function (response) {
        var type = response.headers.get("content-type") || "";
        if (response.status !== 200 || !/^text\/html/i.test(type)) return { why: "the page answers " + response.status + " " + type };
        if (response.redirected) return { why: "the page redirects" };
        return response.text().then(function (html) {
          return { html: html };
        });
      },
      function () {
        return { down: true };
      }
    );
}

// Opens the reload stream at `path` and reports {type, data}: type is one of the
// stream's events, or DOWN (no data). The EventSource reconnects by itself after a
// network error (after the "retry" the server sent); after an HTTP error it gives
// up (readyState CLOSED), and this reconnects it with a backoff.
function openStream(path, emit) {
  var backoff = 250;
  function connect() {
    var source = new EventSource(path);
    Object.keys(EVENT).forEach(function (key) {
      source.addEventListener(EVENT[key], function (event) {
        if (key === "hello") backoff = 250;
        emit({ type: EVENT[key], data: event.data });
      });
    });
    source.onerror = function () {
      emit({ type: DOWN });
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    };
  }
  connect();
}
