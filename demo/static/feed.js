// The feed page's own behaviour, on top of htmx: clear the message once it is
// posted, say why a post failed when htmx shows nothing (htmx swaps 2xx and, as
// configured in the page's htmx-config, the 422 form with its errors), and show
// the feed stream's state in <html data-feed="live|down">.
"use strict";

document.addEventListener("htmx:sseOpen", () => {
  document.documentElement.dataset.feed = "live";
});
document.addEventListener("htmx:sseError", () => {
  document.documentElement.dataset.feed = "down";
});

document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!(form instanceof HTMLFormElement) || form.id !== "post-form") {
    return;
  }
  const status = document.getElementById("post-status");
  const code = event.detail.xhr ? event.detail.xhr.status : 0;
  if (code >= 200 && code < 300) {
    form.elements.message.value = "";
    for (const error of form.querySelectorAll(".error")) {
      error.remove();
    }
    for (const field of form.querySelectorAll("[aria-invalid]")) {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    }
    status.textContent = "Posted.";
    form.elements.message.focus();
  } else if (code === 422) {
    status.textContent = "";
  } else if (code === 413) {
    status.textContent = "Too large: the form may send at most 16 KiB.";
  } else if (code === 0) {
    status.textContent = "The server did not answer (restarting?): try again.";
  } else {
    status.textContent = `Not posted: the server answered ${code}.`;
  }
});
