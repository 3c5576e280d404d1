// axum-autoreload client. Served at /auto_refresh/client.js and injected into every
// HTML page as <script src=... data-instance="<id of the server that served the page>">.
//
// One file, two roles:
// - In a page: join the SharedWorker that runs this same file, so that all tabs of
//   an origin share one reload stream (browsers allow six HTTP/1.1 connections per
//   host). Where there is no SharedWorker, the page opens its own stream.
// - In the SharedWorker: hold the one EventSource on /auto_refresh and relay its
//   events to every tab.
//
// Convergence: instance ids are "<start time, ms, hex>-<random>". A tab reloads when
// the stream speaks for a newer server than the one that served the page, once,
// whatever order pages and events arrive in. A stream that still speaks for an older
// server (it has not seen the restart yet) is waited out.
//
// Failure reports: a server that stands in for an app that could not run (a failed
// build, an app that exited) opens each stream with an "overlay" event (an HTML
// fragment) right before its hello. The tab shows the fragment above its page and
// does not reload onto that server; the hello of the next server without an overlay
// reloads it as usual. A page served by the report's server (its script tag has
// data-overlay) shows the report itself.
(function () {
  "use strict";

  var STREAM = "/auto_refresh";
  var MAX_BACKOFF_MS = 10000;

  function startedAt(id) {
    return parseInt(String(id).split("-")[0], 16) || 0;
  }

  function isNewer(id, than) {
    return !!id && id !== than && startedAt(id) >= startedAt(than);
  }

  // Opens the reload stream and reports {type, data}: type is "hello", "reload",
  // "restart" (data: the instance id), "css" or "image" (data: the URL path of the
  // changed file), "overlay" (data: an HTML fragment), or "down" (no data).
  // The EventSource reconnects by itself after a network error (after the "retry"
  // the server sent); after an HTTP error it gives up (readyState CLOSED), and this
  // reconnects it with a backoff.
  function openStream(emit) {
    var backoff = 250;
    function connect() {
      var source = new EventSource(STREAM);
      ["overlay", "hello", "reload", "restart", "css", "image"].forEach(function (type) {
        source.addEventListener(type, function (event) {
          if (type === "hello") backoff = 250;
          emit({ type: type, data: event.data });
        });
      });
      source.onerror = function () {
        emit({ type: "down" });
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(connect, backoff);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
      };
    }
    connect();
  }

  // ---- SharedWorker role ----------------------------------------------------------
  if (typeof SharedWorkerGlobalScope === "function" && self instanceof SharedWorkerGlobalScope) {
    var ports = new Set();
    var state = null; // the last hello, or down; null while the first connection is made
    var overlay = null; // the overlay that came with that hello, if any
    var pendingOverlay = null; // an overlay waiting for its hello
    openStream(function (message) {
      if (message.type === "overlay") pendingOverlay = message;
      if (message.type === "hello") {
        state = message;
        overlay = pendingOverlay;
        pendingOverlay = null;
      }
      if (message.type === "restart" || message.type === "down") {
        state = { type: "down" };
        overlay = pendingOverlay = null;
      }
      ports.forEach(function (port) {
        port.postMessage(message);
      });
    });
    self.onconnect = function (event) {
      var port = event.ports[0];
      port.onmessage = function (message) {
        if (message.data === "bye") {
          ports.delete(port);
        } else if (message.data === "hi") {
          ports.add(port);
          if (state && overlay) port.postMessage(overlay);
          if (state) port.postMessage(state);
        }
      };
      port.start();
    };
    return;
  }

  // ---- Page role --------------------------------------------------------------------
  var script = document.currentScript;
  var pageId = script && script.dataset.instance;
  // Served by a failure report's server: the page is the report.
  var pageIsReport = !!(script && script.hasAttribute("data-overlay"));
  var pendingOverlay = null; // an overlay waiting for the hello that follows it
  var overlay = null;
  var SCROLL_KEY = "axum-autoreload:scroll";
  var COUNT_KEY = "axum-autoreload:reloads";
  var TIMING_KEY = "axum-autoreload:timing";
  var TIMING = STREAM + "/timing";
  var BADGE_STYLE =
    "position:fixed;right:8px;bottom:8px;z-index:2147483647;padding:2px 8px;" +
    "border-radius:4px;background:rgba(30,30,30,.85);color:#fff;" +
    "font:12px/1.5 system-ui,sans-serif;pointer-events:none";
  var reloading = false;
  var badge = null;

  function reload() {
    if (reloading) return;
    reloading = true;
    try {
      sessionStorage.setItem(
        SCROLL_KEY,
        JSON.stringify({ url: location.href, x: window.scrollX, y: window.scrollY })
      );
      sessionStorage.setItem(COUNT_KEY, String(Number(sessionStorage.getItem(COUNT_KEY) || 0) + 1));
      sessionStorage.setItem(TIMING_KEY, JSON.stringify({ at: Date.now(), from: pageId }));
    } catch (e) {
      // Storage may be off; the reload still happens.
    }
    location.reload();
  }

  // What the page before this one left under `key` in sessionStorage (JSON), taken
  // out; null when there is none or storage is off.
  function takeSaved(key) {
    try {
      var saved = JSON.parse(sessionStorage.getItem(key) || "null");
      sessionStorage.removeItem(key);
      return saved;
    } catch (e) {
      return null;
    }
  }

  function restoreScroll() {
    var saved = takeSaved(SCROLL_KEY);
    if (!saved || saved.url !== location.href) return;
    var apply = function () {
      window.scrollTo(saved.x, saved.y);
    };
    if (document.readyState === "complete") apply();
    else window.addEventListener("load", apply, { once: true });
  }

  function showBadge(show) {
    if (show && !badge) {
      badge = document.createElement("div");
      badge.id = "axum-autoreload-badge";
      badge.setAttribute("role", "status");
      badge.textContent = "restarting\u2026";
      badge.style.cssText = BADGE_STYLE;
      document.documentElement.appendChild(badge);
    } else if (!show && badge) {
      badge.remove();
      badge = null;
    }
  }

  // After a reload this script caused: what the loop cost, measured. The reload is
  // from the event that caused it to this page's load event; a new server adds its
  // build and restart (POST /auto_refresh/timing answers the whole line and logs it
  // in the terminal). Shown for 3 s beside where the badge goes, and in the console.
  function reportTiming() {
    var saved = takeSaved(TIMING_KEY);
    if (!saved || typeof saved.at !== "number") return;
    var report = function () {
      var ms = Math.max(0, Math.round(Date.now() - saved.at));
      var line = "reload " + ms + " ms";
      if (!pageId || saved.from === pageId || typeof fetch !== "function") {
        announce(line);
        return;
      }
      fetch(TIMING + "?reload_ms=" + ms, {
        method: "POST",
      })
        .then(function (response) {
          return response.ok ? response.text() : line;
        })
        .then(announce, function () {
          announce(line);
        });
    };
    if (document.readyState === "complete") report();
    else window.addEventListener("load", report, { once: true });
  }

  // The line also stays on <html data-autoreload-timing> for tests and curious people.
  function announce(line) {
    if (window.console) console.info("[axum-autoreload] " + line);
    document.documentElement.setAttribute("data-autoreload-timing", line);
    var old = document.getElementById("axum-autoreload-timing");
    if (old) old.remove();
    var note = document.createElement("div");
    note.id = "axum-autoreload-timing";
    note.setAttribute("role", "status");
    note.textContent = line;
    note.style.cssText = BADGE_STYLE;
    document.documentElement.appendChild(note);
    setTimeout(function () {
      note.remove();
    }, 3000);
  }

  var OVERLAY_STYLE =
    ":host{all:initial;position:fixed;inset:0;z-index:2147483646;display:block;" +
    "background:rgba(20,20,20,.6);overflow:auto;overscroll-behavior:contain}" +
    ".box{position:relative;box-sizing:border-box;max-width:1100px;margin:24px auto;" +
    "padding:16px 20px;border-radius:6px;background:#1e1e1e;color:#ddd;" +
    "font:14px/1.45 system-ui,sans-serif;box-shadow:0 8px 40px rgba(0,0,0,.5)}" +
    ".dismiss{position:sticky;top:0;float:right;margin:-4px -8px 0 8px;border:0;" +
    "border-radius:4px;padding:2px 10px;background:#444;color:#fff;font:inherit;cursor:pointer}";

  // Show a failure report above the page; a new report replaces the old one.
  function showOverlay(html) {
    hideOverlay();
    overlay = document.createElement("axum-autoreload-overlay");
    overlay.id = "axum-autoreload-overlay";
    overlay.setAttribute("role", "alertdialog");
    var root = overlay.attachShadow({ mode: "open" });
    root.innerHTML =
      "<style>" + OVERLAY_STYLE + "</style><div class=box>" +
      '<button class=dismiss type=button title="Hide until the next change">dismiss</button>' +
      html + "</div>";
    root.querySelector(".dismiss").addEventListener("click", hideOverlay);
    document.documentElement.appendChild(overlay);
  }

  function hideOverlay() {
    if (overlay) overlay.remove();
    overlay = null;
  }

  // A hello that came right after an overlay: the server is a failure report.
  function failed(html, id) {
    showBadge(false);
    setState("failed");
    if (pageId && !isNewer(id, pageId)) return; // this report's own page, or a stale one
    if (pageIsReport) {
      setState("reloading"); // a newer report: load its page
      reload();
    } else {
      showOverlay(html);
    }
  }

  // The state shows on <html data-autoreload="live|down|reloading|failed"> for tests
  // and curious people.
  function setState(state) {
    document.documentElement.setAttribute("data-autoreload", state);
  }

  function handle(message) {
    if (reloading) return;
    switch (message.type) {
      case "overlay":
        pendingOverlay = message.data;
        break;
      case "hello":
        if (pendingOverlay !== null) {
          var html = pendingOverlay;
          pendingOverlay = null;
          failed(html, message.data);
          break;
        }
        // A page that loaded the script by hand, without data-instance, takes the
        // first server it hears as its own.
        if (!pageId) pageId = message.data;
        if (isNewer(message.data, pageId)) {
          setState("reloading");
          reload();
        } else {
          setState("live");
          showBadge(false);
        }
        break;
      case "reload":
        setState("reloading");
        reload();
        break;
      case "css":
        swapStylesheets(message.data);
        break;
      case "image":
        refreshImages(message.data);
        break;
      case "restart":
      case "down":
        pendingOverlay = null;
        setState("down");
        showBadge(true);
        break;
    }
  }

  // ---- Hot swaps ----------------------------------------------------------------
  function pathOf(url) {
    try {
      var parsed = new URL(url, location.href);
      return parsed.origin === location.origin ? parsed.pathname : null;
    } catch (e) {
      return null;
    }
  }

  // `url` with the query `autoreload=<stamp>`: by default now, a URL no cache of
  // the browser holds; a stamp used before names the copy fetched then.
  function busted(url, stamp) {
    var parsed = new URL(url, location.href);
    parsed.searchParams.set("autoreload", String(stamp || Date.now()));
    return parsed.href;
  }

  // The stamp each image refreshed so far was fetched again with, by path. A
  // stylesheet swapped in later names the image as its file does (`url(bg.svg)`),
  // which the browser takes from its memory cache: the old image. So the fresh
  // sheet gets the stamps too.
  var imageStamps = {};

  // Whether a sheet (or a sheet it @imports) comes from `path`.
  function sheetUses(sheet, path) {
    if (!sheet) return false;
    if (sheet.href && pathOf(sheet.href) === path) return true;
    var rules;
    try {
      rules = sheet.cssRules;
    } catch (e) {
      return false; // another origin's sheet
    }
    for (var i = 0; i < rules.length; i++) {
      if (rules[i].styleSheet && sheetUses(rules[i].styleSheet, path)) return true;
    }
    return false;
  }

  // Replace each <link rel=stylesheet> that uses `path` (directly or through
  // @import) with a fresh copy; the old one goes only once the new one has loaded,
  // so the page never shows unstyled. A new sheet that loads empty (caught
  // half-written) is dropped and the old one kept.
  function swapStylesheets(path) {
    var links = document.querySelectorAll('link[rel~="stylesheet"][href]');
    Array.prototype.forEach.call(links, function (old) {
      if (old.hasAttribute("data-autoreload-old")) return;
      if (pathOf(old.href) !== path && !sheetUses(old.sheet, path)) return;
      old.setAttribute("data-autoreload-old", "");
      var fresh = old.cloneNode(false);
      fresh.removeAttribute("data-autoreload-old");
      fresh.href = busted(old.href);
      fresh.onload = function () {
        var emptied = false;
        try {
          emptied = fresh.sheet.cssRules.length === 0 && old.sheet && old.sheet.cssRules.length > 0;
        } catch (e) {
          emptied = false;
        }
        if (emptied) {
          fresh.remove();
          old.removeAttribute("data-autoreload-old");
        } else {
          Object.keys(imageStamps).forEach(function (image) {
            bustSheetUrls(fresh.sheet, image, imageStamps[image]);
          });
          old.remove();
        }
      };
      fresh.onerror = function () {
        fresh.remove();
        old.removeAttribute("data-autoreload-old");
      };
      old.parentNode.insertBefore(fresh, old.nextSibling);
    });
  }

  var URL_IN_CSS = /url\(\s*(['"]?)([^'")]+)\1\s*\)/g;

  function bustCssUrls(value, path, stamp) {
    return value.replace(URL_IN_CSS, function (whole, quote, url) {
      return pathOf(url) === path ? "url(" + quote + busted(url, stamp) + quote + ")" : whole;
    });
  }

  // Point the rules of `sheet` (one of this origin's) that use the image at `path`
  // to its copy fetched with `stamp`.
  function bustSheetUrls(sheet, path, stamp) {
    var rules;
    try {
      rules = sheet.cssRules;
    } catch (e) {
      return;
    }
    Array.prototype.forEach.call(rules, function (rule) {
      if (!rule.style) return;
      ["background-image", "background", "content", "list-style-image", "border-image-source"].forEach(
        function (property) {
          var value = rule.style.getPropertyValue(property);
          if (value && value.indexOf("url(") !== -1) {
            var fresh = bustCssUrls(value, path, stamp);
            if (fresh !== value) rule.style.setProperty(property, fresh, rule.style.getPropertyPriority(property));
          }
        }
      );
    });
  }

  // Refresh the image at `path` in <img> elements, inline styles and the rules of
  // this origin's stylesheets (CSS backgrounds).
  function refreshImages(path) {
    var stamp = Date.now();
    imageStamps[path] = stamp;
    Array.prototype.forEach.call(document.images, function (img) {
      if (pathOf(img.src) === path) img.src = busted(img.src, stamp);
    });
    Array.prototype.forEach.call(document.querySelectorAll("[style*='url(']"), function (el) {
      el.setAttribute("style", bustCssUrls(el.getAttribute("style"), path, stamp));
    });
    Array.prototype.forEach.call(document.styleSheets, function (sheet) {
      bustSheetUrls(sheet, path, stamp);
    });
  }

  function joinSharedWorker() {
    if (typeof SharedWorker !== "function") return false;
    try {
      var worker = new SharedWorker(script.src, { name: "axum-autoreload" });
      worker.port.onmessage = function (event) {
        handle(event.data);
      };
      worker.port.start();
      worker.port.postMessage("hi");
      window.addEventListener("pagehide", function () {
        worker.port.postMessage("bye");
      });
      window.addEventListener("pageshow", function (event) {
        if (event.persisted) worker.port.postMessage("hi");
      });
      return true;
    } catch (e) {
      return false;
    }
  }

  restoreScroll();
  reportTiming();
  if (!joinSharedWorker()) openStream(handle);
})();
