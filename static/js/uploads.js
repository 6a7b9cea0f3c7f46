// Files over the server's limit (MAX_CONTENT_LENGTH, on <body data-max-upload>) are stopped before they are
// sent: the server could only refuse them (413) after the whole upload had crossed the network, and a proxy
// may cut the connection instead of showing its page. The message names the limit, in the page's language.
(function () {
  "use strict";
  var body = document.body;
  var limit = Number(body.dataset.maxUpload || 0);
  if (!limit) {
    return;
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var total = 0;
    form.querySelectorAll('input[type="file"]').forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (file) {
        total += file.size;
      });
    });
    if (total <= limit) {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    var note = form.querySelector(".upload-too-large");
    if (!note) {
      note = document.createElement("div");
      note.className = "flash error upload-too-large";
      note.setAttribute("role", "alert");
      form.insertBefore(note, form.firstChild);
    }
    note.textContent = body.dataset.uploadMessage.replace("{size}", (total / 1048576).toFixed(1));
  }, true);
})();
