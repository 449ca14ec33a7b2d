// Filters, expanders and deep links for the parity report.  Vanilla, no network.
(function () {
  "use strict";
  var $ = function (sel, el) { return (el || document).querySelector(sel); };
  var all = function (sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); };
  var cases = all("tbody.case");
  var groups = all("tbody.group");
  var q = $("#q"), topic = $("#topic"), div = $("#div"), unexp = $("#unexp"), shown = $("#shown");
  var buttons = all(".vbtns button");
  var verdict = "";
  if (!q) { return; }

  function apply() {
    var words = q.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var t = topic.value, n = 0, visible = {};
    cases.forEach(function (c) {
      var d = c.dataset;
      var ok = words.every(function (w) { return d.text.indexOf(w) >= 0; }) &&
        (!t || d.topic === t || d.topic.indexOf(t + "/") === 0) &&
        (!verdict || (" " + d.verdicts + " ").indexOf(" " + verdict + " ") >= 0) &&
        (!div.checked || d.div === "1") && (!unexp.checked || d.unexp === "1");
      c.hidden = !ok;
      if (ok) { n++; visible[d.topic] = true; }
    });
    groups.forEach(function (g) { g.hidden = !visible[g.dataset.topic]; });
    shown.textContent = n + " of " + cases.length + " cases";
    $("#none").hidden = n > 0;
  }

  function setVerdict(v) {
    verdict = v;
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.verdict === v)); });
    apply();
  }

  function reset() {
    q.value = ""; topic.value = ""; div.checked = false; unexp.checked = false;
    setVerdict("");
  }

  function toggle(body, open) {
    var btn = $("button.exp", body), det = $("tr.details", body);
    var want = open === undefined ? btn.getAttribute("aria-expanded") !== "true" : open;
    if (want) {
      var tpl = $("template", det);
      if (tpl) { tpl.parentNode.replaceChild(tpl.content, tpl); }
    }
    det.hidden = !want;
    btn.setAttribute("aria-expanded", String(want));
  }

  // #c12 opens case 12 and scrolls to it; #open-c12 only opens it (for screenshots).
  // Other targets (a requirement's row) open the <details> around them.
  function openHash() {
    var id = decodeURIComponent(location.hash.slice(1)), quiet = id.indexOf("open-") === 0;
    var el = id && document.getElementById(quiet ? id.slice(5) : id);
    if (!el) { return; }
    if (el.matches("tbody.case")) {
      if (el.hidden) { reset(); }
      toggle(el, true);
    } else {
      var box = el.closest("details");
      if (!box || box.open) { return; }
      box.open = true;
    }
    if (!quiet) { el.scrollIntoView({ block: "start" }); }
  }

  q.addEventListener("input", apply);
  topic.addEventListener("change", apply);
  div.addEventListener("change", apply);
  unexp.addEventListener("change", apply);
  $("#reset").addEventListener("click", reset);
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { setVerdict(verdict === b.dataset.verdict ? "" : b.dataset.verdict); });
  });
  all("button[data-show]").forEach(function (b) {
    b.addEventListener("click", function () {
      reset();
      $("#" + b.dataset.show).checked = true;
      apply();
      $("#matrix").scrollIntoView({ block: "start" });
    });
  });
  all("button.show-q").forEach(function (b) {
    b.addEventListener("click", function () {
      reset();
      q.value = b.dataset.q;
      apply();
      $("#matrix").scrollIntoView({ block: "start" });
    });
  });
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("button.exp");
    if (btn) { toggle(btn.closest("tbody")); return; }
    var row = e.target.closest("tr.main");
    if (row && !e.target.closest("a, button, input") && !String(window.getSelection())) {
      toggle(row.parentNode);
    }
  });
  window.addEventListener("hashchange", openHash);

  // The matrix's header row sticks just below the sticky toolbar, whatever its height.
  var bar = $(".toolbar");
  var setBar = function () { document.documentElement.style.setProperty("--bar", bar.offsetHeight + "px"); };
  if (window.ResizeObserver) { new ResizeObserver(setBar).observe(bar); } else { setBar(); }
  openHash();
}());
