/* 后台任务页：排队或处理中时每两秒读取 /jobs/<id>/status，更新进度条和说明；结束后重新载入页面显示结果。
   Without JavaScript the page has a 刷新 link; nothing here is needed to use it. */
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-status-url");
  var state = box.getAttribute("data-state");
  if (state !== "queued" && state !== "running") {
    return;
  }
  var badge = document.getElementById("job-state");
  var bar = document.getElementById("job-progress");
  var count = document.getElementById("job-count");
  var message = document.getElementById("job-message");

  function show(data) {
    if (badge) {
      badge.textContent = data.label;
      badge.className = "badge job-" + data.state;
    }
    if (bar && data.total) {
      bar.max = data.total;
      bar.value = data.progress;
    }
    if (count && data.total) {
      count.textContent = data.progress + " / " + data.total;
    }
    if (message) {
      message.textContent = data.message;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.finished) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 2000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  window.setTimeout(poll, 1000);
})();
