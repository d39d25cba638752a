/* The review form's niceties. The form works without this file: it only adds a live character
   count, the word for the chosen rating, and name previews. No inline script (CSP). */
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return String(values[key]); });
  }

  // Count what the server counts: one character per line break, surrounding space trimmed.
  function measured(text) {
    return Array.from(text.replace(/\r\n?/g, "\n").replace(/[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n").trim()).length;
  }

  var text = document.getElementById("id_text");
  var count = document.getElementById("text-count");
  var live = document.getElementById("text-live");
  if (text && count) {
    var min = parseInt(count.dataset.min, 10), max = parseInt(count.dataset.max, 10);
    var wasShort = null;
    var update = function () {
      var n = measured(text.value);
      var short = n < min;
      count.classList.toggle("is-short", short);
      count.classList.toggle("is-long", n > max);
      if (short) count.textContent = fill(count.dataset.short, { count: n, left: min - n });
      else if (n > max) count.textContent = fill(count.dataset.long, { count: n, over: n - max });
      else count.textContent = fill(count.dataset.ok, { count: n });
      // Announce only the moment the minimum is reached, not every keystroke.
      if (live && wasShort === true && !short) live.textContent = count.dataset.done;
      if (live && short) live.textContent = "";
      wasShort = short;
    };
    text.addEventListener("input", update);
    update();
  }

  var word = document.getElementById("rating-word");
  var stars = form.querySelectorAll(".rv-star-input");
  var showWord = function (input) { if (word) word.textContent = input ? input.dataset.word : ""; };
  stars.forEach(function (input) {
    input.addEventListener("change", function () { showWord(input); });
    var label = form.querySelector('label[for="' + input.id + '"]');
    if (label) {
      label.addEventListener("mouseenter", function () { showWord(input); });
      label.addEventListener("mouseleave", function () {
        showWord(form.querySelector(".rv-star-input:checked"));
      });
    }
  });
  showWord(form.querySelector(".rv-star-input:checked"));

  // Show the name as it will appear, while it is typed.
  var name = document.getElementById("id_reviewer_name");
  var full = form.querySelector('[data-preview="full"]');
  var initial = form.querySelector('[data-preview="initial"]');
  if (name && full && initial) {
    var hints = form.querySelectorAll("[data-hint]");
    name.addEventListener("input", function () {
      var parts = name.value.trim().split(/\s+/).filter(Boolean);
      // With no name the labels say what each choice is; with one, the name as shown, hinted.
      for (var i = 0; i < hints.length; i++) hints[i].hidden = !parts.length;
      if (!parts.length) { full.textContent = full.dataset.blank; initial.textContent = initial.dataset.blank; return; }
      full.textContent = parts.join(" ");
      // Array.from splits by code point, as the server does: charAt would cut an emoji or a
      // character outside the Basic Multilingual Plane in half.
      initial.textContent = parts.length > 1
        ? parts[0] + " " + Array.from(parts[parts.length - 1])[0].toUpperCase() + "."
        : parts[0];
    });
  }

  // After a failed submission, take keyboard and screen-reader users to the list of problems.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
