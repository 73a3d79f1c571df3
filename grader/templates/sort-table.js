// Sorts the submissions table by the clicked column; a second click on the
// same column reverses it. Each cell carries its sort key in data-sort.
(function () {
  "use strict";
  var table = document.getElementById("submissions");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headers = table.querySelectorAll("thead th[data-type]");

  function key(row, column, numeric) {
    var value = row.cells[column].getAttribute("data-sort") || "";
    return numeric ? Number(value) : value;
  }

  Array.prototype.forEach.call(headers, function (header) {
    var button = header.querySelector("button");
    button.addEventListener("click", function () {
      var column = header.cellIndex;
      var numeric = header.getAttribute("data-type") === "number";
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, column, numeric);
        var y = key(b, column, numeric);
        var order = numeric ? x - y : x.localeCompare(y);
        return ascending ? order : -order;
      });
      Array.prototype.forEach.call(headers, function (other) {
        other.removeAttribute("aria-sort");
      });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
}());
