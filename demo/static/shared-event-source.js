// One event stream per URL for every tab of the browser, instead of one per tab.
//
// Browsers open at most six HTTP/1.1 connections per host, and an EventSource
// holds one for as long as the page is open: with one stream per tab, the sixth
// feed tab (the reload stream takes another) would wait forever to load. Here a
// SharedWorker (shared-event-source-worker.js) holds the one EventSource per URL
// and relays its events to every tab; htmx's SSE extension gets an EventSource
// look-alike from htmx.createEventSource.
//
// Without SharedWorker (Chrome on Android, Safari before 16) each tab keeps its
// own EventSource.
"use strict";

(() => {
  if (typeof SharedWorker !== "function" || typeof htmx === "undefined") {
    return;
  }
  const WORKER = "/static/shared-event-source-worker.js";
  const CONNECTING = 0;
  const OPEN = 1;
  const CLOSED = 2;

  // What htmx's SSE extension uses of an EventSource: readyState, onopen,
  // onerror, addEventListener, removeEventListener and close.
  class SharedEventSource extends EventTarget {
    constructor(url) {
      super();
      this.url = new URL(url, location.href).href;
      this.withCredentials = false;
      this.readyState = CONNECTING;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.port = new SharedWorker(WORKER, { name: "shared-event-source" }).port;
      this.port.onmessage = (event) => this.receive(event.data);
      this.port.postMessage({ type: "open", url: this.url });
      this.onPageHide = () => this.close();
      addEventListener("pagehide", this.onPageHide);
    }

    addEventListener(type, listener, options) {
      super.addEventListener(type, listener, options);
      if (type !== "open" && type !== "error") {
        this.port.postMessage({ type: "listen", event: type });
      }
    }

    receive(message) {
      if (this.readyState === CLOSED) {
        return;
      }
      if (message.type === "open") {
        this.readyState = OPEN;
        this.fire(new Event("open"), this.onopen);
      } else if (message.type === "error") {
        this.readyState = message.readyState;
        this.fire(new Event("error"), this.onerror);
      } else if (message.type === "event") {
        this.readyState = OPEN;
        const event = new MessageEvent(message.event, {
          data: message.data,
          lastEventId: message.lastEventId,
          origin: location.origin,
        });
        this.fire(event, message.event === "message" ? this.onmessage : null);
      }
    }

    fire(event, handler) {
      if (typeof handler === "function") {
        handler.call(this, event);
      }
      this.dispatchEvent(event);
    }

    close() {
      if (this.readyState === CLOSED) {
        return;
      }
      this.readyState = CLOSED;
      this.port.postMessage({ type: "close" });
      this.port.close();
      removeEventListener("pagehide", this.onPageHide);
    }
  }

  SharedEventSource.CONNECTING = CONNECTING;
  SharedEventSource.OPEN = OPEN;
  SharedEventSource.CLOSED = CLOSED;
  window.SharedEventSource = SharedEventSource;
  htmx.createEventSource = (url) => new SharedEventSource(url);
})();
