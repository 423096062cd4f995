// Fanseed donate button: put <div data-fanseed-show="SLUG"></div> where the button goes and
// load this script from the Fanseed site; it adds a small framed button with the goal bar.
(function () {
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  document.querySelectorAll("[data-fanseed-show]").forEach(function (el) {
    if (el.dataset.fanseedDone) return;
    el.dataset.fanseedDone = "1";
    var f = document.createElement("iframe");
    f.src = base + "/s/" + encodeURIComponent(el.dataset.fanseedShow) + "/embed";
    f.title = "Donate with Fanseed";
    f.width = el.dataset.width || "320";
    f.height = el.dataset.height || "160";
    f.style.border = "0";
    f.loading = "lazy";
    el.appendChild(f);
  });
})();
