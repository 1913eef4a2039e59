(function () {
  "use strict";
  function lower(s) { return (s || "").toLowerCase(); }
  function setupFilters(root) {
    var controls = root.querySelector(".dspex-controls");
    if (!controls) return;
    controls.hidden = false;
    var entries = Array.prototype.slice.call(root.querySelectorAll(".dspex-entry"));
    var blocks = Array.prototype.slice.call(root.querySelectorAll(".dspex-block"));
    var search = controls.querySelector("input[type=search]");
    function active(axis) {
      var on = {};
      controls.querySelectorAll("button[data-axis=" + axis + "]").forEach(function (b) {
        on[b.getAttribute("data-value")] = b.getAttribute("aria-pressed") === "true";
      });
      return on;
    }
    function apply() {
      var axes = {source: active("source"), worker: active("worker"), module: active("module")};
      var query = lower(search ? search.value : "");
      entries.forEach(function (e) {
        var show = true;
        ["source", "worker", "module"].forEach(function (axis) {
          var value = e.getAttribute("data-" + axis);
          if (value && axes[axis][value] === false) show = false;
        });
        if (show && query) show = lower(e.textContent).indexOf(query) >= 0;
        e.classList.toggle("hidden-by-filter", !show);
      });
      blocks.forEach(function (b) {
        var any = b.querySelector(".dspex-entry:not(.hidden-by-filter)") !== null;
        b.classList.toggle("hidden-by-filter", !any);
      });
      var count = controls.querySelector(".shown-count");
      if (count) {
        count.textContent = root.querySelectorAll(".dspex-entry:not(.hidden-by-filter)").length +
          " of " + entries.length + " events shown";
      }
    }
    controls.addEventListener("click", function (ev) {
      var button = ev.target.closest("button[data-axis]");
      if (!button) return;
      var pressed = button.getAttribute("aria-pressed") === "true";
      button.setAttribute("aria-pressed", pressed ? "false" : "true");
      apply();
    });
    if (search) search.addEventListener("input", apply);
    apply();
  }
  function cellValue(row, index, numeric) {
    var cell = row.children[index];
    var raw = cell ? (cell.getAttribute("data-value") || cell.textContent) : "";
    if (!numeric) return lower(raw.trim());
    var n = parseFloat(raw);
    return isNaN(n) ? -Infinity : n;
  }
  function setupSort(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th[data-sort]").forEach(function (th, index) {
        th.addEventListener("click", function () {
          var numeric = th.getAttribute("data-sort") === "num";
          var ascending = th.getAttribute("aria-sort") !== "ascending";
          table.querySelectorAll("th[data-sort]").forEach(function (o) { o.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          var column = Array.prototype.indexOf.call(th.parentNode.children, th);
          rows.sort(function (a, b) {
            var x = cellValue(a, column, numeric), y = cellValue(b, column, numeric);
            return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }
  document.querySelectorAll(".dspex-view:not([data-ready])").forEach(function (root) {
    root.setAttribute("data-ready", "1");
    setupFilters(root);
    setupSort(root);
  });
})();
