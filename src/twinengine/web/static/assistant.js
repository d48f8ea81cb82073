// The assistant panel: POST the brief, read the server-sent events from the fetch body, and
// show the prompt as it streams. Everything from the server is set as text, never as HTML.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function sessionId() {
    try {
      var key = "twinengine.session";
      var sid = window.localStorage.getItem(key);
      if (!sid) {
        sid = "s" + Math.random().toString(36).slice(2) + Date.now().toString(36);
        window.localStorage.setItem(key, sid);
      }
      return sid;
    } catch (err) { return null; }
  }

  function sourceItem(ref, showCited) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = "/p/" + encodeURIComponent(ref.id);
    a.textContent = ref.title;
    li.appendChild(a);
    var id = document.createElement("span");
    id.className = "id";
    id.textContent = ref.id + (showCited && ref.cited ? " · cited" : "");
    li.appendChild(id);
    if (showCited && ref.cited) li.className = "cited";
    li.dataset.itemId = ref.id;
    return li;
  }

  function fill(list, refs, showCited) {
    list.textContent = "";
    (refs || []).forEach(function (r) { list.appendChild(sourceItem(r, showCited)); });
  }

  function parseFrames(buffer, onEvent) {
    // Frames end with a blank line; returns what is left of an incomplete frame.
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (frame) {
      var name = "message", data = [];
      frame.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) {
        try { onEvent(name, JSON.parse(data.join("\n"))); } catch (err) { /* skip a bad frame */ }
      }
    });
    return rest;
  }

  function run(form) {
    var result = $("assistant-result"), status = $("assistant-status"), out = $("assistant-prompt");
    var go = $("assistant-go");
    var brief = form.elements.brief.value.trim();
    if (!brief) return;
    var body = {brief: brief, stream: true, session_id: sessionId()};
    if (form.elements.language && form.elements.language.value) body.language = form.elements.language.value;
    if (form.elements.remix_of) body.remix_of = form.elements.remix_of.value;
    result.hidden = false;
    out.textContent = "";
    $("assistant-explanation").textContent = "";
    $("assistant-route").textContent = "";
    fill($("assistant-sources"), []);
    fill($("assistant-alternatives"), []);
    status.textContent = "Reading your brief…";
    go.disabled = true;
    result.dataset.state = "streaming";
    result.dataset.deltas = "0";

    function onEvent(name, data) {
      if (name === "meta") {
        fill($("assistant-sources"), data.sources, false);
        fill($("assistant-alternatives"), data.alternatives, false);
        status.textContent = "Writing…";
      } else if (name === "delta") {
        out.textContent += data.text;
        result.dataset.deltas = String((+result.dataset.deltas || 0) + 1);
      } else if (name === "reset") {
        out.textContent = "";
        status.textContent = "The model's answer was refused; using the catalog composer.";
      } else if (name === "answer") {
        out.textContent = data.prompt;
        $("assistant-explanation").textContent = data.explanation;
        var route = data.route.composer === "llm" ? "Written by " + (data.route.model || "an LLM")
          : "Composed from the catalog without an LLM" + (data.route.fallback_reason ? " (" + data.route.fallback_reason + ")" : "");
        $("assistant-route").textContent = route + " · " + Math.round(data.timings_ms.total) + " ms";
        fill($("assistant-sources"), data.sources, true);
        fill($("assistant-alternatives"), data.alternatives, false);
        status.textContent = "Done.";
        result.dataset.requestId = data.request_id;
        result.dataset.state = "done";
      } else if (name === "error") {
        status.textContent = "Error: " + data.message;
        result.dataset.state = "error";
      }
    }

    fetch("/v1/assistant", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "text/event-stream"},
      body: JSON.stringify(body)
    }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().then(function (err) {
          onEvent("error", (err && err.error) || {message: "request failed (" + resp.status + ")"});
        }, function () { onEvent("error", {message: "request failed (" + resp.status + ")"}); });
      }
      var reader = resp.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            parseFrames(buffer + "\n\n", onEvent);
            return;
          }
          buffer = parseFrames(buffer + decoder.decode(chunk.value, {stream: true}), onEvent);
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      onEvent("error", {message: String(err)});
    }).then(function () { go.disabled = false; });
  }

  function init() {
    var form = $("assistant-form");
    if (!form) return;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      run(form);
    });
    // Arriving from a prompt page's Remix box: the brief is already there, so start at once.
    if (form.elements.brief.value.trim() && form.elements.remix_of) run(form);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
