(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }
  function each(selector, action) { Array.prototype.forEach.call(document.querySelectorAll(selector), action); }

  // A toggle button opens the element its aria-controls names (a row's details, a claim's tests).
  function setOpen(button, open) {
    var target = byId(button.getAttribute("aria-controls"));
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "\u25BE" : "\u25B8";
    if (!target) { return; }
    target.hidden = !open;
    if (open) {
      Array.prototype.forEach.call(target.querySelectorAll("img[data-figure]"), function (image) {
        var source = byId("figure-" + image.getAttribute("data-figure"));
        var full = source && source.querySelector("img");
        if (full && !image.getAttribute("src")) { image.src = full.src; image.hidden = false; }
      });
    }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.toggle");
    if (button) { setOpen(button, button.getAttribute("aria-expanded") !== "true"); }
  });

  // The rows table: filters by section, kind and verdict, a text search, and counts that follow them.
  var dataNode = byId("page-data");
  var data = dataNode ? JSON.parse(dataNode.textContent) : null;
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-field]"));
  var search = byId("filter-search");

  function applyFilters() {
    if (!data) { return; }
    var query = search ? search.value.trim().toLowerCase() : "";
    var counts = {};
    var shown = 0;
    data.rows.forEach(function (row) {
      var visible = selects.every(function (select) {
        return !select.value || row[select.getAttribute("data-field")] === select.value;
      }) && (!query || row.search.indexOf(query) !== -1);
      var line = byId(row.id);
      var details = byId(row.id + "-details");
      var button = line.querySelector("button.toggle");
      line.hidden = !visible;
      if (details) { details.hidden = !visible || button.getAttribute("aria-expanded") !== "true"; }
      if (visible) { shown += 1; counts[row.verdict] = (counts[row.verdict] || 0) + 1; }
    });
    byId("shown-count").textContent = String(shown);
    each("[data-count-verdict]", function (chip) {
      var count = counts[chip.getAttribute("data-count-verdict")] || 0;
      chip.querySelector("b").textContent = String(count);
      chip.classList.toggle("empty", count === 0);
    });
  }
  function clearFilters() {
    selects.forEach(function (select) { select.value = ""; });
    if (search) { search.value = ""; }
  }
  selects.forEach(function (select) { select.addEventListener("change", applyFilters); });
  if (search) { search.addEventListener("input", applyFilters); }
  if (byId("filter-reset")) {
    byId("filter-reset").addEventListener("click", function () { clearFilters(); applyFilters(); });
  }
  each("[data-count-verdict]", function (chip) {
    chip.addEventListener("click", function () {
      var verdict = byId("filter-verdict");
      verdict.value = verdict.value === chip.getAttribute("data-count-verdict") ? "" : chip.getAttribute("data-count-verdict");
      applyFilters();
    });
  });

  // A link to #row-... (from the matrix, or a claim's dot) shows that row, opened.
  function showTarget() {
    var line = location.hash.length > 1 ? byId(decodeURIComponent(location.hash.slice(1))) : null;
    if (!line || !line.classList.contains("row")) { return; }
    if (line.hidden) { clearFilters(); applyFilters(); }
    var button = line.querySelector("button.toggle");
    if (button) { setOpen(button, true); }
    line.scrollIntoView({block: "start"});
  }
  window.addEventListener("hashchange", showTarget);
  applyFilters();
  showTarget();
}());
