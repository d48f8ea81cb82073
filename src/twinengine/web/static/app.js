// twinengine gallery: small progressive enhancements. No inline scripts (CSP forbids them).
(function () {
  "use strict";

  // Images point at public CDNs that may be unreachable: show the placeholder instead.
  function markBroken(img) {
    var box = img.closest(".thumb");
    if (box) box.classList.add("noimg");
  }
  document.addEventListener("error", function (e) {
    if (e.target && e.target.tagName === "IMG") markBroken(e.target);
  }, true);
  document.addEventListener("load", function (e) {
    if (e.target && e.target.tagName === "IMG") {
      var box = e.target.closest(".thumb");
      if (box) box.classList.add("loaded");
    }
  }, true);

  function init() {
    document.querySelectorAll(".thumb img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) markBroken(img);
    });
    document.querySelectorAll("button.copy").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var target = document.getElementById(btn.dataset.copyTarget);
        var status = btn.parentElement.querySelector(".copied");
        var text = target ? target.textContent : "";
        copyText(text).then(function () {
          btn.textContent = "Copied";
          if (status) status.textContent = "Prompt copied to the clipboard";
          document.dispatchEvent(new CustomEvent("twinengine:copy", {detail: {itemId: btn.dataset.itemId}}));
          setTimeout(function () { btn.textContent = "Copy prompt"; }, 2000);
        }, function () {
          if (status) status.textContent = "Copy failed: select the text and copy it by hand";
        });
      });
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
