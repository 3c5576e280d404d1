// axum-autoreload client, the part that page.js and worker.js share: the reload
// stream. src/client.rs serves each of them after this file, inside one function,
// and defines `EVENT` before it: the stream's event names, written once in Rust
// (src/sse.rs), as {hello: "hello", reload: "reload", ...}.

// What the page and the worker say when the stream is down (not an event of the
// stream).
var DOWN = "down";
// What the worker answers a tab's "hi" with, at once: a tab that hears nothing
// from its worker falls back to a stream of its own.
var JOINED = "joined";
var MAX_BACKOFF_MS = 10000;

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
