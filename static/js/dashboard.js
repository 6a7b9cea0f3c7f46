/* 总览 (dashboard): draws each <canvas> from the JSON block #dashboard-data with Chart.js (served from
   static/vendor/, installed by `make assets`). A click on a bar or slice opens the task list of exactly
   those tasks, as the numbers in the tables beside the charts do. Without Chart.js the tables stay and
   a notice says why there is no chart. */
(function () {
  "use strict";

  function draw(canvas, spec) {
    var box = canvas.parentElement;
    var rows = parseInt(box.getAttribute("data-rows") || "0", 10);
    if (spec.horizontal && rows > 0) {
      box.style.height = Math.max(8, rows * 1.7 + 4) + "rem";  // a bar per row, readable at any count
    }
    box.classList.add("ready");
    var datasets = spec.datasets.map(function (d) {
      return { label: d.label, data: d.data, links: d.links, backgroundColor: d.color, borderWidth: 0 };
    });
    var axes = spec.type === "doughnut" ? {} : {
      x: { stacked: !!spec.stacked, beginAtZero: true, ticks: { precision: 0 } },
      y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { precision: 0, autoSkip: false } }
    };
    return new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: spec.horizontal ? "y" : "x",
        scales: axes,
        plugins: { legend: { display: spec.datasets.length > 1 || spec.type === "doughnut", position: "bottom" } },
        onHover: function (event, elements) {
          event.native.target.style.cursor = elements.length ? "pointer" : "default";
        },
        onClick: function (event, elements) {
          if (!elements.length) { return; }
          var hit = elements[0];
          var link = datasets[hit.datasetIndex].links[hit.index];
          if (link && datasets[hit.datasetIndex].data[hit.index] > 0) { window.location.assign(link); }
        }
      }
    });
  }

  function start() {
    var source = document.getElementById("dashboard-data");
    if (!source) { return; }
    if (typeof window.Chart === "undefined") {
      var notice = document.getElementById("chart-missing");
      if (notice) { notice.hidden = false; }
      return;
    }
    // The page's own (Chinese-capable) fonts for the labels drawn on the canvases.
    window.Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.font.size = 13;
    var specs = JSON.parse(source.textContent);
    window.dashboardCharts = Object.keys(specs).map(function (id) {
      var canvas = document.getElementById(id);
      return canvas ? draw(canvas, specs[id]) : null;
    }).filter(Boolean);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
