// Print buttons: shown only where JavaScript runs (the browser's own Print works anyway).
(function () {
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
})();
