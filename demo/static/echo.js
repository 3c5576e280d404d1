// The echo page: a WebSocket to /ws that reconnects by itself. The server closes
// it with 1012 (service restart) when it shuts down; the next process accepts the
// new connection, which waits in the socket's backlog meanwhile.
"use strict";

(() => {
  const status = document.getElementById("echo-status");
  const log = document.getElementById("echo-log");
  const form = document.getElementById("echo-form");
  const input = document.getElementById("echo-text");
  const binary = document.getElementById("echo-binary");
  const FIRST_DELAY = 100;
  const MAX_DELAY = 5000;
  const MAX_LOG = 100;
  let socket = null;
  let delay = FIRST_DELAY;

  function setStatus(text) {
    status.textContent = text;
    document.documentElement.dataset.echo = text;
  }

  function append(kind, text) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = `${kind}: ${text}`;
    log.prepend(item);
    while (log.children.length > MAX_LOG) {
      log.lastElementChild.remove();
    }
  }

  function describe(data) {
    if (typeof data === "string") {
      return data;
    }
    const text = new TextDecoder().decode(data);
    return `${data.byteLength} bytes: ${text}`;
  }

  function connect() {
    const url = new URL("/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    setStatus("connecting");
    socket.onopen = () => {
      delay = FIRST_DELAY;
      setStatus("open");
    };
    socket.onmessage = (event) => append("received", describe(event.data));
    socket.onclose = (event) => {
      append("closed", `${event.code} ${event.reason}`.trim());
      // 1012: the server restarts; try again at once. Otherwise back off.
      const wait = event.code === 1012 ? FIRST_DELAY : delay;
      delay = Math.min(delay * 2, MAX_DELAY);
      setStatus(`closed (${event.code}), reconnecting in ${wait} ms`);
      setTimeout(connect, wait);
    };
  }

  function send(data, shown) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      append("not sent", "the socket is not open");
      return;
    }
    socket.send(data);
    append("sent", shown);
    input.value = "";
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value, input.value);
  });
  binary.addEventListener("click", () => {
    const bytes = new TextEncoder().encode(input.value);
    send(bytes, `${bytes.byteLength} bytes: ${input.value}`);
  });
  connect();
})();
