(function () {
  "use strict";
  // In the web UI (not in notebooks) filter and sort state lives in the address, so a
  // reload or a shared link shows the same rows.
  var inApp = document.body && document.body.hasAttribute("data-dspex-app");
  function lower(s) { return (s || "").toLowerCase(); }
  function params() { return new URLSearchParams(window.location.search); }
  function saveParams(update) {
    if (!inApp) return;
    var query = params();
    Object.keys(update).forEach(function (key) {
      query.delete(key);
      [].concat(update[key]).forEach(function (v) { if (v !== "" && v != null) query.append(key, v); });
    });
    var text = query.toString();
    history.replaceState(null, "", window.location.pathname + (text ? "?" + text : "") + window.location.hash);
  }
  function each(root, selector, fn) { Array.prototype.forEach.call(root.querySelectorAll(selector), fn); }

  // -- the trial timeline: filter by source, worker, module and text ---------------------
  function setupFilters(root) {
    var controls = root.querySelector(".dspex-controls");
    if (!controls) return;
    controls.hidden = false;
    var entries = Array.prototype.slice.call(root.querySelectorAll(".dspex-entry"));
    var search = controls.querySelector("input[type=search]");
    var axes = ["source", "worker", "module"];
    var saved = params();
    if (inApp) {
      axes.forEach(function (axis) {
        saved.getAll("hide_" + axis).forEach(function (value) {
          each(controls, "button[data-axis=" + axis + "]", function (b) {
            if (b.getAttribute("data-value") === value) b.setAttribute("aria-pressed", "false");
          });
        });
      });
      if (search && saved.get("find")) search.value = saved.get("find");
    }
    function hidden(axis) {
      var off = [];
      each(controls, "button[data-axis=" + axis + "]", function (b) {
        if (b.getAttribute("aria-pressed") === "false") off.push(b.getAttribute("data-value"));
      });
      return off;
    }
    function apply(save) {
      var off = {}, update = {};
      axes.forEach(function (axis) { off[axis] = hidden(axis); update["hide_" + axis] = off[axis]; });
      var query = lower(search ? search.value : "");
      update.find = query;
      entries.forEach(function (e) {
        var show = axes.every(function (axis) {
          var value = e.getAttribute("data-" + axis);
          return !value || off[axis].indexOf(value) < 0;
        });
        if (show && query) show = lower(e.textContent).indexOf(query) >= 0;
        e.classList.toggle("hidden-by-filter", !show);
      });
      each(root, ".example-run, .dspex-block", function (group) {
        var any = group.querySelector(".dspex-entry:not(.hidden-by-filter)") !== null;
        group.classList.toggle("hidden-by-filter", !any);
        if (any && query && group.classList.contains("example-run")) group.open = true;
      });
      var count = controls.querySelector(".shown-count");
      if (count) {
        count.textContent = root.querySelectorAll(".dspex-entry:not(.hidden-by-filter)").length +
          " of " + entries.length + " events shown";
      }
      if (save) saveParams(update);
    }
    controls.addEventListener("click", function (ev) {
      var button = ev.target.closest("button[data-axis]");
      if (!button) return;
      var pressed = button.getAttribute("aria-pressed") === "true";
      button.setAttribute("aria-pressed", pressed ? "false" : "true");
      apply(true);
    });
    if (search) search.addEventListener("input", function () { apply(true); });
    apply(false);
  }

  // -- sortable tables: header buttons, so that the keyboard sorts too -------------------
  function cellValue(row, index, numeric) {
    var cell = row.children[index];
    var raw = cell ? (cell.getAttribute("data-value") || cell.textContent) : "";
    if (!numeric) return lower(raw.trim());
    var n = parseFloat(raw);
    return isNaN(n) ? -Infinity : n;
  }
  function sortBy(table, th, ascending) {
    var numeric = th.getAttribute("data-sort") === "num";
    each(table, "th[data-sort]", function (o) { o.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    rows.sort(function (a, b) {
      var x = cellValue(a, column, numeric), y = cellValue(b, column, numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function setupSort(root) {
    each(root, "table.sortable", function (table) {
      var headers = Array.prototype.slice.call(table.querySelectorAll("th[data-sort]"));
      headers.forEach(function (th) {
        var control = th.querySelector("button.sort") || th;
        control.addEventListener("click", function () {
          var ascending = th.getAttribute("aria-sort") !== "ascending";
          sortBy(table, th, ascending);
          saveParams({sort: th.textContent.trim(), dir: ascending ? "asc" : "desc"});
        });
      });
      var saved = params();
      if (inApp && saved.get("sort")) {
        var th = headers.filter(function (h) { return h.textContent.trim() === saved.get("sort"); })[0];
        if (th) sortBy(table, th, saved.get("dir") !== "desc");
      }
    });
  }

  // -- the trial table: filters by role, strategy, outcome, status, scope, score and name ---------
  function setupTrialFilters(root) {
    var form = root.querySelector("form.trial-filters");
    var table = root.querySelector("table.trial-table");
    if (!form || !table) return;
    form.hidden = false;
    var fields = Array.prototype.slice.call(form.querySelectorAll("[data-filter]:not(button)"));
    var saved = params();
    if (inApp) {
      fields.forEach(function (f) { if (saved.get("t_" + f.getAttribute("data-filter"))) f.value = saved.get("t_" + f.getAttribute("data-filter")); });
    }
    function apply(save) {
      var want = {}, update = {};
      fields.forEach(function (f) { want[f.getAttribute("data-filter")] = f.value; update["t_" + f.getAttribute("data-filter")] = f.value; });
      var rows = Array.prototype.slice.call(table.tBodies[0].rows), shown = 0;
      rows.forEach(function (row) {
        var ok = ["role", "strategy", "outcome", "status", "scope"].every(function (axis) {
          return !want[axis] || row.getAttribute("data-" + axis) === want[axis];
        });
        var score = parseFloat(row.getAttribute("data-score"));
        if (ok && want.min !== undefined && want.min !== "") ok = !isNaN(score) && score >= parseFloat(want.min);
        if (ok && want.max !== undefined && want.max !== "") ok = !isNaN(score) && score <= parseFloat(want.max);
        if (ok && want.q) ok = lower(row.textContent).indexOf(lower(want.q)) >= 0;
        row.classList.toggle("hidden-by-filter", !ok);
        if (ok) shown += 1;
      });
      var count = form.querySelector(".shown-count");
      if (count) count.textContent = shown + " of " + rows.length + " trials shown";
      if (save) saveParams(update);
    }
    form.addEventListener("input", function () { apply(true); });
    form.addEventListener("change", function () { apply(true); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    var reset = form.querySelector("button[data-filter=reset]");
    if (reset) reset.addEventListener("click", function () { fields.forEach(function (f) { f.value = ""; }); apply(true); });
    apply(false);
  }

  // -- deep links: #evt_... opens what holds the event and scrolls to it ------------------
  function reveal(id) {
    if (!id || id.indexOf("evt_") !== 0) return;
    var target = document.getElementById(id);
    if (!target) {
      // On another page of a long trial: the server knows which one.
      if (inApp && params().get("event") !== id) {
        var query = params();
        query.delete("offset");
        query.set("event", id);
        window.location.replace(window.location.pathname + "?" + query.toString() + "#" + id);
      }
      return;
    }
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    each(document, ".dspex-entry.target", function (e) { e.classList.remove("target"); });
    target.classList.add("target");
    target.scrollIntoView({block: "center"});
  }

  // -- a running experiment: poll its progress, reload the sections that changed ---------
  var LIVE_SECTIONS = ["header", ".dspex-progress", ".dspex-summary", ".dspex-plot", ".dspex-lineage", ".dspex-trials", ".dspex-best"];
  function setupLive(root) {
    var url = root.getAttribute("data-live-url");
    if (!url || !window.fetch) return;
    var every = parseInt(root.getAttribute("data-live-every"), 10) || 2000;
    var note = root.querySelector(".live-note");
    if (note) note.hidden = false;
    var version = root.getAttribute("data-live-version");
    function swap(html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".dspex-experiment");
      if (!fresh) return;
      LIVE_SECTIONS.forEach(function (selector) {
        var now = root.querySelector(":scope > " + selector), next = fresh.querySelector(":scope > " + selector);
        if (now && next) now.replaceWith(next);
        else if (next) root.insertBefore(next, root.querySelector(":scope > script:last-of-type"));
      });
      setupSort(root);
      setupTrialFilters(root);
      if (!fresh.hasAttribute("data-live-url")) root.removeAttribute("data-live-url");
    }
    function poll() {
      fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); }).then(function (p) {
        if (p.version !== version) {
          return fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
            .then(function (r) { return r.text(); })
            .then(function (html) { swap(html); version = p.version; if (p.running) setTimeout(poll, every); });
        }
        if (p.running) setTimeout(poll, every);
      }).catch(function () { setTimeout(poll, every * 3); });
    }
    setTimeout(poll, every);
  }

  document.querySelectorAll(".dspex-view:not([data-ready])").forEach(function (root) {
    root.setAttribute("data-ready", "1");
    setupFilters(root);
    setupSort(root);
    setupTrialFilters(root);
    setupLive(root);
  });
  if (!window.__dspexLinks) {
    window.__dspexLinks = true;
    window.addEventListener("hashchange", function () { reveal(window.location.hash.slice(1)); });
    // ?event=evt_... (a link from another page, or the server's page of a long trial)
    // scrolls to the event just as #evt_... does.
    var asked = window.location.hash ? window.location.hash.slice(1) : params().get("event");
    if (asked) reveal(asked);
  }
})();
