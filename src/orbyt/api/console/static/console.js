// Orbyt console behaviour (no inline scripts: the CSP allows only files from /console).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');

  // htmx requests repeat the session's CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });

  // Forms that change something ask first (data-confirm holds the question).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  // The once-shown key: selected when focused, for copying.
  document.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-select-on-focus")) {
      event.target.select();
    }
  });

  function charts() {
    var source = document.getElementById("usage-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var days = JSON.parse(source.textContent);
    var x = days.map(function (d) { return Date.parse(d.group + "T00:00:00Z") / 1000; });
    function col(name, scale) {
      return days.map(function (d) { var v = d[name]; return v === null ? null : v * (scale || 1); });
    }
    var specs = {
      requests: [["Requests", col("requests"), "#1d4ed8"], ["Errors", col("errors"), "#b91c1c"]],
      tokens: [["Prompt", col("prompt_tokens"), "#0f766e"], ["Completion", col("completion_tokens"), "#7c3aed"]],
      cost: [["Gateway", col("cost_usd"), "#1d4ed8"], ["BYOK (provider-billed)", col("provider_billed_cost_usd"), "#7c3aed"]],
      errors: [["Error rate %", col("error_rate", 100), "#b91c1c"]],
      latency: [["p50", col("latency_p50_ms"), "#0f766e"], ["p95", col("latency_p95_ms"), "#92400e"]]
    };
    var plots = [];
    Object.keys(specs).forEach(function (id) {
      var el = document.getElementById("chart-" + id);
      if (!el) { return; }
      var series = [{}], data = [x];
      specs[id].forEach(function (s) {
        series.push({ label: s[0], stroke: s[2], width: 2, points: { show: true } });
        data.push(s[1]);
      });
      var y = { size: 64 };
      if (id === "cost") {
        y.values = function (u, ticks) { return ticks.map(function (v) { return "$" + Number(v.toPrecision(2)); }); };
      }
      var opts = { width: Math.max(260, el.clientWidth), height: 180, series: series,
        axes: [{}, y], scales: { x: { time: true } } };
      plots.push([new uPlot(opts, data, el), el]);
    });
    window.addEventListener("resize", function () {
      plots.forEach(function (p) { p[0].setSize({ width: Math.max(260, p[1].clientWidth), height: 180 }); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", charts); } else { charts(); }
})();
