// Keeps the "Seeded by N of R nodes" line of an episode in processing current, and reloads the
// page once the episode is published or failed, so that it shows the links or the reason.
(function () {
  var line = document.getElementById("fleet-progress");
  if (!line) return;
  var poll = function () {
    fetch(line.dataset.statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.status !== "processing") { location.reload(); return; }
      if (s.seeded_by) line.firstElementChild.textContent = s.seeded_by;
      setTimeout(poll, 2000);
    }).catch(function () { setTimeout(poll, 4000); });
  };
  setTimeout(poll, 2000);
})();
