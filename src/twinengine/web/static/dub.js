// Dubbing page: upload a clip, poll its run, then play and offer the downloads.
(function () {
  "use strict";
  const form = document.getElementById("dub-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const keyMeta = document.querySelector('meta[name="twinengine-key"]');
  const headers = keyMeta ? { "X-API-Key": keyMeta.content } : {};
  let timer = null;

  function message(text) { $("dub-message").textContent = text; }

  function fileUrl(run, name) {
    return "/v1/dubbing/runs/" + encodeURIComponent(run.id) + "/files/" + encodeURIComponent(name);
  }

  function render(run) {
    $("dub-run").hidden = false;
    $("dub-run-id").textContent = run.id;
    $("dub-status").textContent = run.status + (run.error ? " (" + run.error + ")" : "");
    const list = $("dub-stages");
    list.replaceChildren(...run.stages.map((s) => {
      const li = document.createElement("li");
      li.textContent = s.name + (s.done ? " ✓ " + (s.seconds != null ? s.seconds.toFixed(1) + " s" : "") : "");
      li.className = s.done ? "done" : "";
      return li;
    }));
    if (run.status !== "done") return;
    $("dub-result").hidden = false;
    const video = $("dub-video");
    const src = fileUrl(run, "output.mp4");
    if (video.getAttribute("src") !== src) video.setAttribute("src", src);
    $("dub-files").replaceChildren(...run.files.map((name) => {
      const a = document.createElement("a");
      a.href = fileUrl(run, name);
      a.textContent = name;
      a.setAttribute("download", name);
      return a;
    }));
    const q = run.quality || {};
    const shown = [["real-time factor", q.rtf], ["round-trip WER", q.wer],
      ["speaker similarity", q.speaker_sim], ["max drift (ms)", q.max_drift_ms]];
    $("dub-quality").replaceChildren(...shown.flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v == null ? "n/a" : String(v);
      return [dt, dd];
    }));
  }

  async function poll(id) {
    const res = await fetch("/v1/dubbing/runs/" + encodeURIComponent(id), { headers });
    if (!res.ok) { message("cannot read run " + id); return; }
    const run = await res.json();
    render(run);
    if (run.status === "done" || run.status === "failed") { clearInterval(timer); timer = null; }
  }

  function watch(id) {
    if (timer) clearInterval(timer);
    poll(id);
    timer = setInterval(() => poll(id), 1000);
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    if (!form.elements.voice_match.checked) data.set("voice_match", "false");
    message("uploading…");
    const res = await fetch(form.action, { method: "POST", body: data, headers });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      message((body.error && body.error.message) || ("upload refused (" + res.status + ")"));
      return;
    }
    message("dubbing started");
    history.replaceState(null, "", "/dub?run=" + encodeURIComponent(body.id));
    watch(body.id);
  });

  const current = new URLSearchParams(location.search).get("run");
  if (current) watch(current);
})();
