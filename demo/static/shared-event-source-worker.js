// The SharedWorker behind shared-event-source.js: one EventSource per URL, its
// events relayed to every tab (port) that listens to that URL.
//
// Tab to worker: {type: "open", url}, {type: "listen", event}, {type: "close"}.
// Worker to tab: {type: "open"}, {type: "error", readyState},
//                {type: "event", event, data, lastEventId}.
"use strict";

// url -> {source, ports: Set<MessagePort>, events: Set<string>, last: Map<string, message>}
const streams = new Map();

function post(stream, message) {
  for (const port of stream.ports) {
    port.postMessage(message);
  }
}

function streamFor(url) {
  const existing = streams.get(url);
  if (existing && existing.source.readyState !== EventSource.CLOSED) {
    return existing;
  }
  const stream = {
    source: new EventSource(url),
    ports: new Set(),
    events: new Set(),
    last: new Map(),
  };
  stream.source.onopen = () => post(stream, { type: "open" });
  stream.source.onerror = () => {
    post(stream, { type: "error", readyState: stream.source.readyState });
    if (stream.source.readyState === EventSource.CLOSED && streams.get(url) === stream) {
      // The tabs' htmx opens a new stream; it starts afresh.
      streams.delete(url);
    }
  };
  streams.set(url, stream);
  return stream;
}

function listen(stream, name) {
  if (stream.events.has(name)) {
    return;
  }
  stream.events.add(name);
  stream.source.addEventListener(name, (event) => {
    const message = {
      type: "event",
      event: name,
      data: event.data,
      lastEventId: event.lastEventId,
    };
    stream.last.set(name, message);
    post(stream, message);
  });
}

onconnect = (connect) => {
  const port = connect.ports[0];
  let url = null;
  let stream = null;
  port.onmessage = ({ data: message }) => {
    if (message.type === "open") {
      url = message.url;
      stream = streamFor(url);
      stream.ports.add(port);
      if (stream.source.readyState === EventSource.OPEN) {
        port.postMessage({ type: "open" });
      }
    } else if (message.type === "listen" && stream) {
      listen(stream, message.event);
      // A tab that joins an open stream gets its latest event at once, so an
      // update sent between the page's rendering and now is not lost.
      const last = stream.last.get(message.event);
      if (last && stream.source.readyState === EventSource.OPEN) {
        port.postMessage(last);
      }
    } else if (message.type === "close" && stream) {
      stream.ports.delete(port);
      if (stream.ports.size === 0 && streams.get(url) === stream) {
        stream.source.close();
        streams.delete(url);
      }
      stream = null;
    }
  };
};
