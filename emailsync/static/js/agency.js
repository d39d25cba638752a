/* The agency app's small behaviours. Everything works without it; this adds dialogs, copy
   buttons, confirmations and "tick all". No inline script anywhere (CSP). */
(function () {
  "use strict";
  // A form sent back with errors: its summary takes the focus, so the reader hears what to fix
  // and the page scrolls there rather than opening at the top.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();

  var dialog = document.getElementById("dialog");
  var body = document.getElementById("dialog-body");

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (dialog && event.detail.target === body && !dialog.open) {
      dialog.showModal();
      var first = body.querySelector("input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
  });
  if (dialog) {
    dialog.addEventListener("close", function () { body.innerHTML = ""; });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close();  // a click on the backdrop
    });
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-dialog]");
    if (close && dialog) { dialog.close(); return; }

    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (!source) return;
      var text = source.textContent.trim();
      var done = function () {
        var label = copy.textContent;
        copy.textContent = copy.getAttribute("data-copied") || "Copied ✓";
        setTimeout(function () { copy.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        var range = document.createRange();
        range.selectNodeContents(source);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        try { document.execCommand("copy"); done(); } catch (e) { /* selected; user copies */ }
      }
      return;
    }

    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-check-all]");
    if (!all) return;
    var name = all.getAttribute("data-check-all");
    document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
