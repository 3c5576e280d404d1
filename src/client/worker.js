// axum-autoreload client, the SharedWorker's part. Served at
// /auto_refresh/worker.js?stream=<path of the reload stream>; the page's part
// (page.js) starts it, one for every tab of an origin, so that they share one
// reload stream (browsers allow six HTTP/1.1 connections per host).
//
// Served after stream.js (`EVENT`, `DOWN`, `openStream`), inside one function:
// see src/client.rs.
//
// It holds the one EventSource and relays its events to every tab, and replays
// to a tab that joins later what the stream said so far: the last hello (or
// "down"), the overlay that came right before that hello, and the building or
// report state that came after it. It also fetches the page a tab asks for to
// morph it in, once for all the tabs of that page that ask after the same event:
// after a restart, ten tabs of a page make one request to the new app, not ten.

var STREAM = new URL(self.location.href).searchParams.get("stream");

// The tabs that said "hi" and not yet "bye".
var ports = new Set();
// The last hello, or down; null while the first connection is made.
var state = null;
// The overlay that came with that hello, if any.
var overlay = null;
// An overlay waiting for its hello.
var pendingOverlay = null;
// The building or report event that came after that hello (a live app's build),
// until a clear, the next hello, a restart or the stream going down.
var build = null;

function remember(message) {
  switch (message.type) {
    case EVENT.overlay:
      pendingOverlay = message;
      break;
    case EVENT.hello:
      state = message;
      overlay = pendingOverlay;
      pendingOverlay = null;
      build = null; // a stream opened now gets the state kept by the server after its hello
      break;
    case EVENT.building:
    case EVENT.report:
      build = message;
      break;
    case EVENT.clear:
      build = null;
      break;
    case EVENT.restart:
    case DOWN:
      state = { type: DOWN };
      overlay = pendingOverlay = build = null;
      break;
  }
}

// The pages fetched for the tabs' morphs, by URL: {promise, generation}, kept
// while the fetch is under way and for SHARE_FOR_MS after it ended. Ten tabs of
// one page that all update after a restart make one request, not ten.
var pages = {};
// One more for every event that may change a page: a fetch is shared only within
// its generation.
var generation = 0;
var SHARE_FOR_MS = 1000;

function page(url) {
  var known = pages[url];
  if (known && known.generation === generation) return known.promise;
  var entry = { generation: generation };
  entry.promise = fetchPage(url).then(function (answer) {
    setTimeout(function () {
      if (pages[url] === entry) delete pages[url];
    }, SHARE_FOR_MS);
    return answer;
  });
  pages[url] = entry;
  return entry.promise;
}

function relay(message) {
  if (message.type === EVENT.hello || message.type === EVENT.morph || message.type === EVENT.reload) generation++;
  remember(message);
  ports.forEach(function (port) {
    port.postMessage(message);
  });
}

self.onconnect = function (event) {
  var port = event.ports[0];
  port.onmessage = function (message) {
    if (message.data && message.data.type === PAGE) {
      var id = message.data.id;
      page(message.data.url).then(function (answer) {
        port.postMessage({ type: PAGE, id: id, answer: answer });
      });
    } else if (message.data === "bye") {
      ports.delete(port);
    } else if (message.data === "hi") {
      ports.add(port);
      port.postMessage({ type: JOINED });
      if (state && overlay) port.postMessage(overlay);
      if (state) port.postMessage(state);
      if (state && build) port.postMessage(build);
    }
  };
  port.start();
};

openStream(STREAM, relay);
