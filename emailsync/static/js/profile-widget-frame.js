/* Inside the widget iframe: tell the embedding page how tall the content is (only a number). */
(function () {
  "use strict";
  if (window.parent === window) { return; }
  var last = 0;
  function report() {
    var height = document.documentElement.scrollHeight;
    if (height !== last) {
      last = height;
      window.parent.postMessage({ emailsync: "height", height: height }, "*");
    }
  }
  window.addEventListener("load", report);
  window.addEventListener("resize", report);
  if (window.ResizeObserver) { new ResizeObserver(report).observe(document.body); }
  document.addEventListener("DOMContentLoaded", report);
})();
