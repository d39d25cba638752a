/* Email Sync review widget loader. Paste on any page:
 *   <script src="https://REVIEWS-HOST/widget.js" data-agency="your-agency" async></script>
 * Optional: data-recruiter="recruiter-slug", data-reviews="0".."10".
 * It inserts one iframe (our page, our origin) after itself and sizes it to its content.
 * No cookies, no globals, nothing loaded from anyone else. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || script.getAttribute("data-emailsync-done")) { return; }
  script.setAttribute("data-emailsync-done", "1");
  var agency = script.getAttribute("data-agency") || "";
  if (!/^[-a-zA-Z0-9_]+$/.test(agency)) { return; }
  var origin = new URL(script.src, document.baseURI).origin;
  var src = new URL("/agencies/" + encodeURIComponent(agency) + "/widget/", origin);
  var recruiter = script.getAttribute("data-recruiter");
  if (recruiter && /^[-a-zA-Z0-9_]+$/.test(recruiter)) { src.searchParams.set("recruiter", recruiter); }
  var reviews = script.getAttribute("data-reviews");
  if (reviews && /^[0-9]{1,2}$/.test(reviews)) { src.searchParams.set("reviews", reviews); }

  var frame = document.createElement("iframe");
  frame.src = src.toString();
  frame.title = script.getAttribute("data-title") || "Verified reviews";
  frame.loading = "lazy";
  frame.referrerPolicy = "strict-origin-when-cross-origin";
  frame.setAttribute("scrolling", "no");
  frame.className = "emailsync-widget";
  // CSSOM, not a style attribute: allowed by a strict Content-Security-Policy on the host page.
  frame.style.border = "0";
  frame.style.width = "100%";
  frame.style.maxWidth = "40rem";
  frame.style.height = "16rem";
  frame.style.display = "block";
  script.parentNode.insertBefore(frame, script.nextSibling);

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) { return; }
    var data = event.data;
    if (data && data.emailsync === "height" && typeof data.height === "number") {
      var height = Math.max(80, Math.min(4000, Math.ceil(data.height)));
      frame.style.height = height + "px";
    }
  });
})();
