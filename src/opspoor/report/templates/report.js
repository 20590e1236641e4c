// opspoor case report: sort tables, filter and search rows. No request is ever made.
(function () {
  "use strict";
  function cellValue(row, i, numeric) {
    var c = row.cells[i];
    var v = c ? (c.getAttribute("data-v") || c.textContent.trim()) : "";
    if (numeric) { var n = parseFloat(v); return isNaN(n) ? -Infinity : n; }
    return v.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.tabIndex = 0;
      th.title = "sort";
      function sort() {
        var numeric = th.getAttribute("data-type") === "num";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, i, numeric), y = cellValue(b, i, numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
  // a filter bar: inputs with data-key filter the items of its data-target by their data-* values;
  // an input with data-key="search" matches data-search (or the text) as a substring
  document.querySelectorAll(".filters").forEach(function (bar) {
    var items = document.querySelectorAll(bar.getAttribute("data-target"));
    var count = bar.querySelector(".shown");
    var inputs = bar.querySelectorAll("[data-key]");
    function apply() {
      var shown = 0;
      items.forEach(function (item) {
        var ok = true;
        inputs.forEach(function (input) {
          var want = input.value.trim().toLowerCase();
          if (!want) { return; }
          var key = input.getAttribute("data-key");
          if (key === "search") {
            var hay = (item.getAttribute("data-search") || item.textContent).toLowerCase();
            ok = ok && hay.indexOf(want) !== -1;
          } else {
            ok = ok && (item.getAttribute("data-" + key) || "").toLowerCase() === want;
          }
        });
        item.hidden = !ok;
        if (ok) { shown += 1; }
      });
      if (count) { count.textContent = shown + " of " + items.length + " shown"; }
      bar.dispatchEvent(new CustomEvent("filtered", { detail: shown }));
    }
    inputs.forEach(function (input) { input.addEventListener("input", apply); });
    apply();
  });
})();
