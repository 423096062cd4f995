// Live preview of a share plan: asks the server to split the preview amount exactly as the
// ledger will, and shows the parts and the total as percentages are typed.
(function () {
  var form = document.getElementById("plan-form");
  if (!form) return;
  var timer;
  function update() {
    var params = new URLSearchParams();
    form.querySelectorAll("input.percent").forEach(function (el) { params.append("percent", el.value); });
    fetch(form.getAttribute("action") + "/preview?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        document.getElementById("plan-total").textContent = data.total_percent + "%";
        var cells = form.querySelectorAll("td.preview");
        cells.forEach(function (td, i) { td.textContent = (data.parts && data.parts[i]) || ""; });
      })
      .catch(function () {});
  }
  form.addEventListener("input", function (e) {
    if (!e.target.classList.contains("percent")) return;
    clearTimeout(timer);
    timer = setTimeout(update, 150);
  });
})();
