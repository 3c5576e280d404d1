// axum-autoreload client, the page's part. Served at /auto_refresh/client.js and
// injected into every HTML page as <script src=... data-instance="<id of the
// server that served the page>" data-stream="<path of the reload stream>">.
//
// Served after stream.js (`EVENT`, `DOWN`, `openStream`), inside one function:
// see src/client.rs.
//
// It joins the SharedWorker (worker.js) that holds the one reload stream of all
// tabs of an origin (browsers allow six HTTP/1.1 connections per host). Where
// there is no SharedWorker, or the worker fails to start, the page opens its own
// stream.
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
//
// A live app's build (the runner builds the next version while this one serves):
// "building" shows a small badge, "report" shows the failed build's report above
// the live page (which stays as it is), "clear" takes both back. The next server's
// hello takes them back too.

function startedAt(id) {
  return parseInt(String(id).split("-")[0], 16) || 0;
}

function isNewer(id, than) {
  return !!id && id !== than && startedAt(id) >= startedAt(than);
}

var script = document.currentScript;
var pageId = script.dataset.instance;
// The reload stream's path, from the tag (the layer writes it); a tag written by
// hand without it gets the library's.
var STREAM = script.dataset.stream || PATH.stream;
// Served by a failure report's server: the page is the report.
var pageIsReport = script.hasAttribute("data-overlay");
var pendingOverlay = null; // an overlay waiting for the hello that follows it
var overlay = null;
var SCROLL_KEY = "axum-autoreload:scroll";
var COUNT_KEY = "axum-autoreload:reloads";
var TIMING_KEY = "axum-autoreload:timing";
var TIMING = PATH.timing;
var BADGE_STYLE =
  "position:fixed;right:8px;bottom:8px;z-index:2147483647;padding:2px 8px;" +
  "border-radius:4px;background:rgba(30,30,30,.85);color:#fff;" +
  "font:12px/1.5 system-ui,sans-serif;pointer-events:none";
var RESTARTING = "restarting\u2026";
var BUILDING = "building\u2026";
// When the reload this script asked for was asked for (ms since the epoch); null
// when it asked for none, or the navigation was cancelled.
var reloadingSince = null;
// The same, kept for the page's last moment (pagehide) after a prompt: a browser
// may skip the prompt (no user activation) and navigate after all.
var reloadAskedAt = null;
var badge = null;

// Reload the page. What the next page needs (the scroll position, the reload
// count, when it started) is saved when the page goes (pagehide), so that a
// navigation cancelled (a beforeunload prompt the person said no to) leaves
// nothing behind, and the next event may reload again.
function reload() {
  if (reloadingSince !== null) return;
  reloadingSince = Date.now();
  // Registered last, this runs after the page's own beforeunload handlers: if one
  // of them asked for a prompt, the navigation may be cancelled. Timers wait while
  // the prompt shows; a page still here after it stayed.
  window.addEventListener(
    "beforeunload",
    function (event) {
      if (!event.defaultPrevented && !event.returnValue) return;
      setTimeout(function () {
        reloadAskedAt = reloadingSince;
        reloadingSince = null;
        setState("stale");
      }, 0);
    },
    { once: true }
  );
  location.reload();
}

window.addEventListener("pagehide", function () {
  var at = reloadingSince !== null ? reloadingSince : reloadAskedAt;
  if (at === null) return;
  try {
    sessionStorage.setItem(
      SCROLL_KEY,
      JSON.stringify({ url: location.href, x: window.scrollX, y: window.scrollY })
    );
    count();
    sessionStorage.setItem(TIMING_KEY, JSON.stringify({ at: at, from: pageId }));
  } catch (e) {
    // Storage may be off; the reload still happens.
  }
});

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

// Show the small badge with `text` (RESTARTING or BUILDING), or take it away (null).
function showBadge(text) {
  if (text && !badge) {
    badge = document.createElement("div");
    badge.id = "axum-autoreload-badge";
    badge.setAttribute("role", "status");
    badge.style.cssText = BADGE_STYLE;
    document.documentElement.appendChild(badge);
  } else if (!text && badge) {
    badge.remove();
    badge = null;
  }
  if (badge) badge.textContent = text;
}

// After a reload this script caused: what the loop cost, measured. The reload is
// from the event that caused it to this page's load event; a new server adds its
// build and restart (POST /auto_refresh/timing answers the whole line and logs it
// in the terminal). Shown for 3 s beside where the badge goes, and in the console.
function reportTiming() {
  var saved = takeSaved(TIMING_KEY);
  if (!saved || typeof saved.at !== "number") return;
  var report = function () {
    timed(saved.at, saved.from);
  };
  if (document.readyState === "complete") report();
  else window.addEventListener("load", report, { once: true });
}

// Announce the update that began at `at` (ms since the epoch) on a page from the
// server `from`: with the build and restart from the server when it is a new one.
function timed(at, from) {
  var ms = Math.max(0, Math.round(Date.now() - at));
  var line = "reload " + ms + " ms";
  if (!pageId || from === pageId || typeof fetch !== "function") {
    announce(line);
    return;
  }
  // Asked when the tab is idle: every tab of an edit asks, and the first ones
  // would otherwise slow the server's answer to the others' page fetches.
  whenIdle(function () {
    fetch(TIMING + "?reload_ms=" + ms, { method: "POST" })
      .then(function (response) {
        return response.ok ? response.text() : line;
      })
      .then(announce, function () {
        announce(line);
      });
  });
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
  showBadge(null);
  setState("failed");
  if (pageId && !isNewer(id, pageId)) return; // this report's own page, or a stale one
  if (pageIsReport) {
    setState("reloading"); // a newer report: load its page
    reload();
  } else {
    showOverlay(html);
  }
}

// The state shows on <html data-autoreload="live|down|building|failed|reloading|stale">
// for tests and curious people (stale: the person cancelled a reload).
function setState(state) {
  document.documentElement.setAttribute("data-autoreload", state);
}

function handle(message) {
  if (reloadingSince !== null) return;
  switch (message.type) {
    case EVENT.overlay:
      pendingOverlay = message.data;
      break;
    case EVENT.hello:
      if (pendingOverlay !== null) {
        var html = pendingOverlay;
        pendingOverlay = null;
        failed(html, message.data);
        break;
      }
      // A page that loaded the script by hand, without data-instance, takes the
      // first server it hears as its own.
      if (!pageId) pageId = message.data;
      latest = message.data;
      if (isNewer(message.data, pageId)) {
        update(Date.now());
      } else if (updating || hiddenSince !== null) {
        // an update under way, or waiting for the tab to be shown
      } else {
        setState("live");
        showBadge(null);
        hideOverlay();
      }
      break;
    case EVENT.reload:
      setState("reloading");
      reload();
      break;
    case EVENT.morph:
      update(Date.now());
      break;
    case EVENT.css:
      swapStylesheets(message.data);
      break;
    case EVENT.image:
      refreshImages(message.data);
      break;
    case EVENT.building:
      hideOverlay();
      showBadge(BUILDING);
      setState("building");
      break;
    case EVENT.report:
      showBadge(null);
      showOverlay(message.data);
      setState("failed");
      break;
    case EVENT.clear:
      showBadge(null);
      hideOverlay();
      setState("live");
      break;
    case EVENT.restart:
    case DOWN:
      pendingOverlay = null;
      setState("down");
      showBadge(RESTARTING);
      break;
  }
}

// ---- Morph --------------------------------------------------------------------
// A tab that must show a newer server's page, or a page whose HTML changed, fetches
// its own URL and morphs the new document into the current one (idiomorph, served
// beside this script): what the person typed, the focus and selection, the scroll
// positions, open <details> and every node the new page did not change stay. It
// reloads instead whenever a morph could leave the page wrong (see `whyReload`):
// never a page worse off than after a reload.

// The page's WebSockets, tracked from when this script runs: a socket the restart
// closed, that the page did not replace, leaves a morphed page dead where a reload
// brings it back (axum's chat example never reconnects by itself).
var sockets = [];
(function trackSockets() {
  var Native = window.WebSocket;
  if (typeof Native !== "function") return;
  var Tracked = function WebSocket(url, protocols) {
    var socket = arguments.length > 1 ? new Native(url, protocols) : new Native(url);
    var entry = { socket: socket, closedByPage: false, lost: false };
    var close = socket.close;
    socket.close = function () {
      entry.closedByPage = true;
      return close.apply(socket, arguments);
    };
    socket.addEventListener("close", function () {
      entry.lost = !entry.closedByPage;
    });
    sockets.push(entry);
    return socket;
  };
  Tracked.prototype = Native.prototype;
  Object.setPrototypeOf(Tracked, Native);
  window.WebSocket = Tracked;
})();

// Whether a socket the page held was closed by the other end and not replaced by a
// newer one.
function lostSocket() {
  for (var i = sockets.length - 1; i >= 0; i--) {
    var socket = sockets[i].socket;
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) return false;
    if (sockets[i].lost) return true;
  }
  return false;
}

// idiomorph, loaded once at the start (src/client/vendor/idiomorph.min.js).
var IDIOMORPH = "__axumAutoreloadIdiomorph";
(function loadIdiomorph() {
  var url = new URL(PATH.idiomorph, script.src);
  url.search = new URL(script.src).search;
  var tag = document.createElement("script");
  tag.src = url.href;
  tag.async = true;
  tag.onload = function () {
    tag.remove();
    whenIdle(warmUp);
  };
  tag.onerror = function () {
    tag.remove();
  };
  (document.head || document.documentElement).appendChild(tag);
})();

function whenIdle(task) {
  if (typeof requestIdleCallback === "function") requestIdleCallback(task, { timeout: 2000 });
  else setTimeout(task, 200);
}

// Runs one update's work (parse, the reload checks, the morph) on two detached
// copies of this page, once, while the tab is idle: the browser compiles that code
// on its first run, which made the first real morph take 7.5 ms where the next
// took 2-3 ms (one tab, the demo's page). An edit reaches every open tab at once,
// so each tab's first morph is the one that counts.
function warmUp() {
  if (morphOff()) return; // every update of this page is a full reload
  try {
    var html = document.documentElement.outerHTML;
    var parser = new DOMParser();
    var into = parser.parseFromString(html, "text/html");
    var doc = parser.parseFromString(html, "text/html");
    doc.title = doc.title + " ";
    whyReload(doc);
    morphIn(doc, into.documentElement);
  } catch (e) {
    // Only a warm-up: the real update reports its own failures.
  }
}

// The page opts out of morphing (every update is a full reload) with
// <meta name="axum-autoreload" content="reload">; the app with
// AutoReloadBuilder::morph(false), which puts data-morph="false" on this script's tag.
function optedOut(doc) {
  var meta = doc.querySelector('meta[name="axum-autoreload"]');
  return !!meta && /(^|\s)reload(\s|$)/.test(meta.getAttribute("content") || "");
}

// Why this page never morphs (every update is a full reload), or null.
function morphOff() {
  return pageIsReport ? "the page is a failure report" :
    script.getAttribute("data-morph") === "false" ? "the app turned morphing off" :
    optedOut(document) ? "the page opts out of morphing" :
    null;
}

function isOurs(node) {
  if (node.nodeType !== 1) return false;
  if (node.id && node.id.indexOf("axum-autoreload-") === 0) return true;
  return node.tagName === "SCRIPT" && !!node.src && pathOf(node.src) !== null &&
    pathOf(node.src).indexOf(STREAM + "/") === 0;
}

// A stylesheet link's URL without the stamp a hot swap added (see `busted`).
function sheetHref(link) {
  try {
    var url = new URL(link.getAttribute("href") || "", location.href);
    url.searchParams.delete("autoreload");
    return url.href + " " + (link.getAttribute("media") || "");
  } catch (e) {
    return "";
  }
}

// What a morph would leave wrong: the scripts (their src and text) or the head's
// stylesheets changed. The served page's before the last morph when there was one,
// else the live page's.
var served = null;

function signature(doc, live) {
  var scripts = [];
  Array.prototype.forEach.call(doc.scripts, function (tag) {
    if (!isOurs(tag)) scripts.push((tag.src ? "src " + tag.src : "text " + tag.text) + " " + tag.type);
  });
  var links = [];
  var styles = [];
  if (doc.head) {
    Array.prototype.forEach.call(doc.head.querySelectorAll('link[rel~="stylesheet"]'), function (link) {
      if (!link.hasAttribute("data-autoreload-old")) links.push(sheetHref(link));
    });
    Array.prototype.forEach.call(doc.head.querySelectorAll("style"), function (style) {
      styles.push(style.textContent);
    });
  }
  return {
    scripts: scripts.sort().join("\n\u0000"),
    links: links.sort().join("\n"),
    // The live page's <style> elements may include ones its scripts added (htmx
    // adds one): compared only once a served page is known.
    styles: live ? null : styles.sort().join("\n\u0000"),
  };
}

// Why `doc` (the page as the server sends it now) must be loaded rather than
// morphed in, or null.
function whyReload(doc) {
  if (optedOut(doc)) return "the new page opts out of morphing";
  var before = served || signature(document, true);
  var after = signature(doc, false);
  if (before.scripts !== after.scripts) return "its scripts changed";
  if (before.links !== after.links) return "its stylesheets changed";
  if (before.styles !== null && before.styles !== after.styles) return "its stylesheets changed";
  if (before.styles === null) {
    // Every <style> of the new head must be in the live one.
    var live = signature(document, false).styles.split("\n\u0000");
    var fresh = after.styles ? after.styles.split("\n\u0000") : [];
    for (var i = 0; i < fresh.length; i++) {
      if (fresh[i] && live.indexOf(fresh[i]) === -1) return "its stylesheets changed";
    }
  }
  return null;
}

// What the morph must leave as the person left it.
function keepAttribute(name, node, change) {
  if (node === document.documentElement) return change === "remove" || name.indexOf("data-autoreload") === 0;
  var tag = node.tagName;
  if (name === "value" && (tag === "INPUT" || tag === "TEXTAREA")) return node.value !== node.defaultValue;
  if (name === "checked" && tag === "INPUT") return node.checked !== node.defaultChecked;
  if (name === "selected" && tag === "OPTION") return node.selected !== node.defaultSelected;
  if (name === "open" && (tag === "DETAILS" || tag === "DIALOG")) return true;
  return false;
}

// Morph `doc` into the page (or into `into`, a detached copy); throws what
// idiomorph throws.
function morphIn(doc, into) {
  var morph = window[IDIOMORPH].morph;
  // A stylesheet swapped in place carries a stamp the new page does not: keep it,
  // so the head keeps the sheet it has rather than load it again.
  Array.prototype.forEach.call(document.querySelectorAll('head link[rel~="stylesheet"]'), function (live) {
    Array.prototype.forEach.call(doc.head.querySelectorAll('link[rel~="stylesheet"]'), function (fresh) {
      if (sheetHref(fresh) === sheetHref(live)) fresh.setAttribute("href", live.getAttribute("href"));
    });
  });
  // So does an image refreshed in place: the browser's memory cache holds the old
  // one under the URL the new page names.
  Array.prototype.forEach.call(doc.images, function (img) {
    var path = pathOf(img.src);
    if (path && imageStamps[path]) img.setAttribute("src", busted(img.src, imageStamps[path]));
  });
  var before = served;
  morph(into || document.documentElement, doc.documentElement, {
    morphStyle: "outerHTML",
    head: {
      style: "merge",
      shouldRemove: function (node) {
        if (isOurs(node)) return false;
        // A <style> the page's scripts added (not in the page as served) stays.
        if (node.tagName === "STYLE") return !!before && before.styleTexts.indexOf(node.textContent) !== -1;
        return true;
      },
    },
    callbacks: {
      beforeNodeAdded: function (node) {
        return !isOurs(node);
      },
      beforeNodeRemoved: function (node) {
        return !isOurs(node);
      },
      beforeAttributeUpdated: function (name, node, change) {
        return !keepAttribute(name, node, change);
      },
    },
  });
}

var updating = false; // a fetch and morph under way
var again = false; // and another update asked for meanwhile
var hiddenSince = null; // an update waiting for the tab to be shown: when it was asked for
var latest = null; // the id of the newest server heard

// Bring the page up to date with the server: morph, or reload where a morph could
// leave it wrong. A hidden tab waits until it is shown.
function update(at) {
  if (reloadingSince !== null) return;
  if (updating) {
    again = true;
    return;
  }
  if (document.visibilityState === "hidden") {
    if (hiddenSince === null) hiddenSince = at;
    setState("hidden");
    return;
  }
  hiddenSince = null;
  var why = morphOff() ||
    (lostSocket() ? "the restart closed a WebSocket of the page" :
    !window[IDIOMORPH] || typeof fetch !== "function" || typeof DOMParser !== "function" ? "idiomorph did not load" :
    null);
  setState("reloading");
  if (why) return fullReload(why);
  updating = true;
  var from = pageId;
  mark("update");
  getPage(location.href)
    .then(function (answer) {
      mark("fetched");
      updating = false;
      if (answer.down) {
        // No server to ask: the stream's next hello asks again.
        setState("down");
        return;
      }
      if (answer.why) return fullReload(answer.why);
      var doc = new DOMParser().parseFromString(answer.html, "text/html");
      mark("parsed");
      var why = whyReload(doc);
      if (why) return fullReload(why);
      var tag = doc.querySelector("script[data-instance]");
      var fresh = signature(doc, false);
      fresh.styleTexts = Array.prototype.map.call(doc.head ? doc.head.querySelectorAll("style") : [], function (style) {
        return style.textContent;
      });
      try {
        morphIn(doc);
      } catch (e) {
        return fullReload("the morph threw " + e);
      }
      mark("morphed");
      served = fresh;
      if (tag) pageId = tag.getAttribute("data-instance");
      count();
      if (window.htmx && typeof window.htmx.process === "function") window.htmx.process(document.body);
      mark("processed");
      showBadge(null);
      hideOverlay();
      setState("live");
      timed(at, from);
      if (again || isNewer(latest, pageId)) {
        again = false;
        update(Date.now());
      }
    });
}

// A User Timing mark "axum-autoreload:<step>" of the update's steps (update,
// fetched, parsed, morphed, processed), for the benchmarks and the browser's profiler.
function mark(step) {
  if (window.performance && performance.mark) performance.mark("axum-autoreload:" + step);
}

function fullReload(why) {
  updating = false;
  if (window.console) console.info("[axum-autoreload] reloading: " + why);
  setState("reloading");
  reload();
}

// One more update of this tab, by reload or morph, in sessionStorage for tests.
function count() {
  try {
    sessionStorage.setItem(COUNT_KEY, String(Number(sessionStorage.getItem(COUNT_KEY) || 0) + 1));
  } catch (e) {
    // Storage may be off.
  }
}

document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible" && hiddenSince !== null) update(hiddenSince);
});

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

// How long a tab waits for its worker's answer to "hi" before it opens a stream of
// its own: the worker answers at once, from a script served by this origin.
var JOIN_TIMEOUT_MS = 2000;
// How long a tab waits for the page it asked its worker for before it fetches the
// page itself.
var PAGE_TIMEOUT_MS = 3000;
// The worker's fetch of a page (see `getPage`), once the tab has joined it.
var fromWorker = function () {
  return null;
};
var asked = 0;
var waiting = {};

// The page at `url` for a morph (see `fetchPage`): through the worker, which makes
// one request for all the tabs of a page that update together, or by the tab.
function getPage(url) {
  return fromWorker(url) || fetchPage(url);
}

// Joins the SharedWorker that holds the one reload stream (worker.js, served beside
// this script with the same version); false where there is none. A worker that
// fails to start (its script does not load, or throws: the error event; or it never
// answers, as a tab that joins a worker that failed for another tab sees) hands the
// tab its own stream.
function joinSharedWorker() {
  if (typeof SharedWorker !== "function") return false;
  var url = new URL(PATH.worker, script.src);
  url.search = new URL(script.src).search;
  url.searchParams.set("stream", STREAM);
  try {
    var worker = new SharedWorker(url.href, { name: "axum-autoreload" });
  } catch (e) {
    return false;
  }
  var joined = false;
  var fellBack = false;
  var fallBack = function () {
    if (joined || fellBack) return;
    fellBack = true;
    worker.port.close();
    openStream(STREAM, handle);
  };
  fromWorker = function (url) {
    if (!joined || fellBack) return null;
    var id = ++asked;
    return new Promise(function (resolve) {
      var timer = setTimeout(function () {
        delete waiting[id];
        resolve(fetchPage(url));
      }, PAGE_TIMEOUT_MS);
      waiting[id] = function (answer) {
        clearTimeout(timer);
        resolve(answer);
      };
      worker.port.postMessage({ type: PAGE, id: id, url: url });
    });
  };
  worker.onerror = fallBack;
  setTimeout(fallBack, JOIN_TIMEOUT_MS);
  worker.port.onmessage = function (event) {
    if (event.data && event.data.type === JOINED) {
      joined = true;
      return;
    }
    if (event.data && event.data.type === PAGE) {
      var answered = waiting[event.data.id];
      delete waiting[event.data.id];
      if (answered) answered(event.data.answer);
      return;
    }
    handle(event.data);
  };
  worker.port.start();
  worker.port.postMessage("hi");
  window.addEventListener("pagehide", function () {
    if (!fellBack) worker.port.postMessage("bye");
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !fellBack) worker.port.postMessage("hi");
  });
  return true;
}

restoreScroll();
reportTiming();
if (!joinSharedWorker()) openStream(STREAM, handle);
