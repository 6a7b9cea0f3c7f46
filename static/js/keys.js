/* Keyboard shortcuts on every page (each page documents its own in a .keys-hint line):
   "/" jumps to the search box, Esc leaves a field, Ctrl+Enter (⌘+Enter) submits the form being edited
   — also from a text area or a list box, where Enter does not. No inline script: the CSP is 'self'. */
(function () {
  "use strict";

  var NOT_TYPING = { checkbox: 1, radio: 1, button: 1, submit: 1, reset: 1, file: 1, hidden: 1 };

  function isTyping(el) {
    if (!el || el === document.body) { return false; }
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && !NOT_TYPING[(el.type || "").toLowerCase()];
  }

  function submit(form) {
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.isComposing) { return; }
    var target = event.target;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      var form = target && (target.form || (target.closest && target.closest("form")));
      if (form) { event.preventDefault(); submit(form); }
      return;
    }
    if (event.key === "Escape" && isTyping(target)) { target.blur(); return; }
    if (event.ctrlKey || event.metaKey || isTyping(target)) { return; }
    if (event.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    }
  });

  window.trackerKeys = { isTyping: isTyping };
}());
