// twinengine tracker: logs what the gallery shows and what people do with it to POST /v1/events.
//
// A slate is any element with data-surface holding .card[data-item-id] elements (in order).
// Server-rendered slates carry data-request-id and data-experiments (from the recommendation
// response); others get a request id here. Impressions are logged for cards actually seen
// (half visible), as the prefix of the slate up to the furthest card seen, in increments
// (position = the first card's position), so positions stay true under scrolling. Clicks on
// cards, copy-prompt conversions and dwell on prompt pages are logged too. No inline script:
// the page's CSP forbids it.
(function () {
  "use strict";

  var ENDPOINT = "/v1/events";
  var SID_KEY = "te_sid";
  var CLICK_KEY = "te_clicks";
  var queue = [];
  // With API keys on, the page carries a publishable key (events:write) in a meta tag.
  var keyMeta = document.querySelector('meta[name="twinengine-key"]');
  var apiKey = keyMeta ? keyMeta.getAttribute("content") : null;

  function hex(n) {
    var bytes = new Uint8Array(n);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function readCookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([A-Za-z0-9]+)"));
    return m ? m[1] : null;
  }

  // The anonymous session id lives in a first-party cookie so the server can personalise the
  // gallery for this visitor (no account needed); 180 days.
  function sessionId() {
    var sid = readCookie(SID_KEY);
    if (!sid) {
      sid = hex(12);
      document.cookie = SID_KEY + "=" + sid + "; path=/; max-age=15552000; SameSite=Lax";
    }
    return sid;
  }

  var who = {};
  var userId = document.body && document.body.getAttribute("data-user-id");
  if (userId) { who.user_id = userId; } else { who.session_id = sessionId(); }

  function base(type) {
    var e = {event_id: hex(16), type: type, ts: new Date().toISOString()};
    for (var k in who) { if (Object.prototype.hasOwnProperty.call(who, k)) e[k] = who[k]; }
    return e;
  }

  function flush(useBeacon) {
    if (!queue.length) return;
    var body = JSON.stringify({events: queue.splice(0, 500)});
    // A beacon cannot carry the key header; fetch with keepalive survives page exit too.
    if (useBeacon && !apiKey && navigator.sendBeacon &&
        navigator.sendBeacon(ENDPOINT, new Blob([body], {type: "application/json"}))) return;
    var headers = {"content-type": "application/json"};
    if (apiKey) headers["x-api-key"] = apiKey;
    try {
      fetch(ENDPOINT, {method: "POST", body: body, keepalive: true, credentials: "same-origin",
                       headers: headers});
    } catch (err) { /* analytics must never break the page */ }
  }

  function slateInfo(section) {
    if (!section.dataset.requestId) section.dataset.requestId = hex(16);
    var exps = null;
    if (section.dataset.experiments) {
      try { exps = JSON.parse(section.dataset.experiments); } catch (err) { exps = null; }
    }
    return {request_id: section.dataset.requestId, surface: section.dataset.surface, experiments: exps};
  }

  function cardsOf(section) {
    return Array.prototype.slice.call(section.querySelectorAll(".card[data-item-id]"));
  }

  // --- impressions -------------------------------------------------------------------------
  var seen = new Map();  // section -> furthest position seen (1-based)
  var logged = new Map();  // section -> positions already logged

  function logImpressions() {
    seen.forEach(function (upTo, section) {
      var done = logged.get(section) || 0;
      if (upTo <= done) return;
      var cards = cardsOf(section).slice(done, upTo);
      var info = slateInfo(section);
      var e = base("impression");
      e.request_id = info.request_id;
      e.surface = info.surface;
      e.slate = cards.map(function (c) { return c.dataset.itemId; });
      e.position = done + 1;
      if (info.experiments) e.experiments = info.experiments;
      queue.push(e);
      logged.set(section, upTo);
    });
  }

  function observe(section) {
    var cards = cardsOf(section);
    if (!cards.length || !("IntersectionObserver" in window)) return;
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        var pos = cards.indexOf(entry.target) + 1;
        if (pos > (seen.get(section) || 0)) seen.set(section, pos);
        io.unobserve(entry.target);
      });
    }, {threshold: 0.5});
    cards.forEach(function (c) { io.observe(c); });
  }

  // --- clicks --------------------------------------------------------------------------------
  function onClick(ev) {
    var link = ev.target.closest && ev.target.closest("[data-track=click]");
    if (!link) return;
    var card = link.closest(".card[data-item-id]");
    var section = card && card.closest("[data-surface]");
    if (!card || !section) return;
    var info = slateInfo(section);
    var pos = cardsOf(section).indexOf(card) + 1;
    if (pos > (seen.get(section) || 0)) seen.set(section, pos);  // clicked means seen
    logImpressions();
    var e = base("click");
    e.request_id = info.request_id;
    e.surface = info.surface;
    e.item_id = card.dataset.itemId;
    e.position = pos;
    queue.push(e);
    // The prompt page attributes a later copy to this slate.
    try {
      var clicks = JSON.parse(sessionStorage.getItem(CLICK_KEY) || "{}");
      clicks[e.item_id] = {request_id: e.request_id, surface: e.surface, position: pos};
      sessionStorage.setItem(CLICK_KEY, JSON.stringify(clicks));
    } catch (err) { /* private mode */ }
    flush(true);
  }

  // --- conversions and dwell on a prompt page ------------------------------------------------
  function clickContext(itemId) {
    try { return JSON.parse(sessionStorage.getItem(CLICK_KEY) || "{}")[itemId] || null; }
    catch (err) { return null; }
  }

  function onCopy(ev) {
    var itemId = ev.detail && ev.detail.itemId;
    if (!itemId) return;
    var e = base("conversion");
    e.item_id = itemId;
    e.kind = "copy";
    e.value = 1;
    var ctx = clickContext(itemId);
    if (ctx) { e.request_id = ctx.request_id; e.surface = ctx.surface; e.position = ctx.position; }
    queue.push(e);
    flush(false);
  }

  var article = document.querySelector("article.prompt[data-item-id]");
  var shownAt = Date.now();
  var dwellSent = false;

  function sendDwell() {
    if (!article || dwellSent) return;
    dwellSent = true;
    var e = base("dwell");
    e.item_id = article.dataset.itemId;
    e.value = Date.now() - shownAt;
    var ctx = clickContext(e.item_id);
    if (ctx) { e.request_id = ctx.request_id; e.surface = ctx.surface; }
    queue.push(e);
  }

  function leave() {
    logImpressions();
    sendDwell();
    flush(true);
  }

  function init() {
    document.querySelectorAll("[data-surface]").forEach(observe);
    document.addEventListener("click", onClick, true);
    document.addEventListener("twinengine:copy", onCopy);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") leave();
    });
    window.addEventListener("pagehide", leave);
    setInterval(function () { logImpressions(); flush(false); }, 3000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
