/* Draw every chart container on the page with Apache ECharts, when it is loaded.
 *
 * Convention: <div data-chart="ID" style="height:…"></div> plus
 * <script type="application/json" id="ID">{"type": "bar|line|funnel|pie", "title": "",
 * "categories": [...], "series": [{"name": "...", "data": [...]}]}</script>
 * (Django: {{ spec|json_script:"ID" }}). Without window.echarts nothing happens and the
 * tables beside the charts carry the figures. Redrawn after an HTMX swap; every chart has a
 * "save as image" button. */
(function () {
  "use strict";

  function option(spec) {
    var base = {
      title: spec.title ? { text: spec.title, left: "center", textStyle: { fontSize: 14 } } : undefined,
      tooltip: { trigger: spec.type === "bar" || spec.type === "line" ? "axis" : "item" },
      toolbox: { feature: { saveAsImage: { title: "" } } },
      legend: { bottom: 0 }
    };
    var series = spec.series || [];
    var categories = spec.categories || [];
    if (spec.type === "funnel" || spec.type === "pie") {
      var first = series[0] || { name: "", data: [] };
      base.series = [{
        name: first.name,
        type: spec.type,
        sort: spec.type === "funnel" ? "none" : undefined,
        radius: spec.type === "pie" ? ["35%", "65%"] : undefined,
        top: 40, bottom: 40,
        label: { show: true, formatter: "{b}: {c}" },
        data: categories.map(function (name, i) { return { name: name, value: first.data[i] }; })
      }];
      return base;
    }
    base.grid = { left: 20, right: 20, top: 50, bottom: 50, containLabel: true };
    base.xAxis = { type: "category", data: categories };
    base.yAxis = { type: "value" };
    base.series = series.map(function (s) {
      return { name: s.name, type: spec.type === "line" ? "line" : "bar", data: s.data };
    });
    return base;
  }

  function draw(root) {
    if (!window.echarts) { return; }
    var nodes = (root || document).querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(nodes, function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) { return; }
      var spec;
      try { spec = JSON.parse(source.textContent); } catch (e) { return; }
      var chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
      chart.setOption(option(spec), true);
    });
  }

  function resize() {
    if (!window.echarts) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) { chart.resize(); }
    });
  }

  window.WeiyingCharts = { draw: draw, option: option };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  window.addEventListener("resize", resize);
})();
