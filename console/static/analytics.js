// Draws the analytics pages' charts with the vendored uPlot, from the JSON each chart carries.
// Every chart has a table with the same numbers after it, so the page reads without this script.
(function () {
  "use strict";
  var COLOURS = ["#1f5fa8", "#2e8540", "#b3261e", "#8a5a00"];

  function draw(element) {
    var data = JSON.parse(document.getElementById(element.dataset.chart).textContent);
    var names = Object.keys(data.series);
    var labels = data.labels;
    var bars = data.kind === "bars";
    var xs = bars ? labels.map(function (_, i) { return i; }) : data.x;
    if (!xs.length) { element.textContent = "No data in this window."; return; }
    var series = [{}].concat(names.map(function (name, i) {
      var spec = { label: name, stroke: COLOURS[i % COLOURS.length], width: 2 };
      if (bars) {
        spec.fill = COLOURS[i % COLOURS.length];
        spec.paths = uPlot.paths.bars({ size: [0.8 / names.length, 60], align: 0 });
      }
      return spec;
    }));
    var options = {
      width: Math.max(320, element.clientWidth || 640),
      height: 260,
      series: series,
      scales: { x: { time: !bars, range: bars ? [-0.5, xs.length - 0.5] : undefined } },
      axes: [
        bars ? { values: function (_, ticks) { return ticks.map(function (t) { return labels[t] || ""; }); },
                 splits: function () { return xs; } } : {},
        {},
      ],
    };
    new uPlot(options, [xs].concat(names.map(function (name) { return data.series[name]; })), element);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("div.chart[data-chart]").forEach(draw);
  });
  // A filtered funnel swapped in by htmx brings its chart's numbers: draw it.
  document.addEventListener("htmx:afterSettle", function () {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("div.chart[data-chart]").forEach(function (element) {
      if (!element.querySelector("canvas") && !element.textContent) { draw(element); }
    });
  });
})();
