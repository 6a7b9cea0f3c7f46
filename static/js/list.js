/* Task lists: select all on the page, the count of ticked tasks, and j / k / x to move between rows
   and tick the current one (documented in the page's .keys-hint). Without JavaScript every checkbox
   still works one by one. */
(function () {
  "use strict";

  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("input[data-select]")); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-row]")); }

  function refresh() {
    var all = boxes();
    var ticked = all.filter(function (b) { return b.checked; }).length;
    var master = document.querySelector("input[data-select-all]");
    if (master) {
      master.checked = all.length > 0 && ticked === all.length;
      master.indeterminate = ticked > 0 && ticked < all.length;
    }
    var count = document.querySelector("[data-selected-count]");
    if (count) {
      count.textContent = (count.getAttribute("data-template") || "{n}").replace("{n}", String(ticked));
      count.hidden = ticked === 0;
    }
  }

  function currentRow() {
    var el = document.activeElement;
    return el && el.closest ? el.closest("tr[data-row]") : null;
  }

  function focusRow(row) {
    if (!row) { return; }
    var target = row.querySelector("a[href]") || row.querySelector("input[data-select]");
    if (target) { target.focus(); }
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(currentRow());
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(Math.max(index + step, 0), all.length - 1);
    focusRow(all[next]);
  }

  function toggleCurrent() {
    var row = currentRow();
    var box = row && row.querySelector("input[data-select]");
    if (box) { box.checked = !box.checked; refresh(); }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("input[data-select-all]")) {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    refresh();
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) { return; }
    var keys = window.trackerKeys;
    if (keys && keys.isTyping(event.target)) { return; }
    if (event.key === "j") { event.preventDefault(); move(1); }
    else if (event.key === "k") { event.preventDefault(); move(-1); }
    else if (event.key === "x") { event.preventDefault(); toggleCurrent(); }
  });

  // The filter form leaves its empty fields out of the address: short links to share, save or bookmark.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.filters")) { return; }
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled && (el.tagName === "INPUT" || el.tagName === "SELECT") &&
          el.type !== "checkbox" && el.value === "") {
        el.disabled = true;
      }
    });
  });

  // Coming back through the browser's history shows the form as it was left: enable its fields again.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.filters [disabled]"), function (el) {
      el.disabled = false;
    });
  });

  document.addEventListener("DOMContentLoaded", refresh);
}());
