// Resumable upload of an episode's file with the tus 1.0 protocol: creation, HEAD for the
// offset, PATCH in chunks. The upload's URL is kept in localStorage, so after a dropped
// connection or a page reload the same file continues where the server has it.
(function () {
  var box = document.getElementById("uploader");
  if (!box) return;
  var input = document.getElementById("file");
  var start = document.getElementById("upload-start");
  var bar = document.getElementById("upload-bar");
  var percent = document.getElementById("upload-percent");
  var speed = document.getElementById("upload-speed");
  var eta = document.getElementById("upload-eta");
  var message = document.getElementById("upload-message");
  var badge = document.getElementById("episode-status");
  var CHUNK = 8 * 1024 * 1024;
  var endpoint = "/api/uploads/";

  function b64(s) { return btoa(unescape(encodeURIComponent(s))); }
  function key(file) { return "fanseed-upload:" + box.dataset.episode + ":" + file.name + ":" + file.size + ":" + file.lastModified; }
  function say(text, isError) { message.textContent = text; message.className = isError ? "error" : "muted"; }
  // status sets the episode's badge, as the page would show it after a reload.
  function status(s) { badge.textContent = s; badge.className = "status " + s; }
  function human(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + u[i];
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) xhr.upload.onprogress = onProgress;
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = function () { reject(new Error("network error")); };
      xhr.send(body || null);
    });
  }

  function create(file) {
    var meta = "episode_id " + b64(box.dataset.episode) + ",filename " + b64(file.name);
    return request("POST", endpoint, { "Upload-Length": String(file.size), "Upload-Metadata": meta }).then(function (xhr) {
      if (xhr.status !== 201) throw new Error(xhr.responseText.trim() || ("HTTP " + xhr.status));
      var url = xhr.getResponseHeader("Location");
      localStorage.setItem(key(file), url);
      return { url: url, offset: 0 };
    });
  }

  // resume asks the server how much of a known upload it has; a gone upload starts afresh.
  function resume(file) {
    var url = localStorage.getItem(key(file));
    if (!url) return create(file);
    return request("HEAD", url, {}).then(function (xhr) {
      if (xhr.status !== 200 && xhr.status !== 204) { localStorage.removeItem(key(file)); return create(file); }
      return { url: url, offset: parseInt(xhr.getResponseHeader("Upload-Offset"), 10) };
    });
  }

  function upload(file) {
    var began = Date.now(), startOffset = null, retries = 0;
    document.getElementById("upload-progress").hidden = false;
    start.disabled = true;
    function show(done) {
      var pct = file.size ? Math.floor(done * 100 / file.size) : 100;
      bar.value = pct;
      percent.textContent = pct + "%";
      if (startOffset === null) startOffset = done;
      var secs = (Date.now() - began) / 1000, rate = secs > 0.5 ? (done - startOffset) / secs : 0;
      if (rate > 0) {
        speed.textContent = human(rate) + "/s";
        eta.textContent = Math.ceil((file.size - done) / rate) + " s left";
      }
    }
    function step(up) {
      show(up.offset);
      if (up.offset < file.size) status("uploading");
      if (up.offset >= file.size) return finished(file);
      var end = Math.min(up.offset + CHUNK, file.size);
      return request("PATCH", up.url, { "Upload-Offset": String(up.offset), "Content-Type": "application/offset+octet-stream" },
        file.slice(up.offset, end), function (e) { show(up.offset + e.loaded); }).then(function (xhr) {
          if (xhr.status !== 204) throw new Error(xhr.responseText.trim() || ("HTTP " + xhr.status));
          retries = 0;
          return step({ url: up.url, offset: parseInt(xhr.getResponseHeader("Upload-Offset"), 10) });
        });
    }
    function attempt() {
      return resume(file).then(step).catch(function (err) {
        if (err.message === "network error" && retries < 20) {
          retries++;
          say("Connection lost; resuming in " + retries * 2 + " s…");
          return new Promise(function (r) { setTimeout(r, retries * 2000); }).then(attempt);
        }
        start.disabled = false;
        say(err.message, true);
      });
    }
    say("Uploading " + file.name + " (" + human(file.size) + ")…");
    return attempt();
  }

  function finished(file) {
    localStorage.removeItem(key(file));
    bar.value = 100;
    percent.textContent = "100%";
    say("Upload complete. The seedbox fleet is fetching and verifying it…");
    var poll = function () {
      fetch(box.dataset.statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        status(s.status);
        if (s.status === "published") { say("Published."); setTimeout(function () { location.reload(); }, 500); return; }
        if (s.status === "failed") { say("Publishing failed: " + s.failure_reason, true); return; }
        if (s.seeded_by) say("Upload complete. " + s.seeded_by + "…");
        setTimeout(poll, 1500);
      }).catch(function () { setTimeout(poll, 3000); });
    };
    poll();
  }

  start.addEventListener("click", function () {
    var file = input.files[0];
    if (!file) { say("Choose a file first.", true); return; }
    if (file.size === 0) { say("The file is empty.", true); return; }
    if (file.size > Number(box.dataset.max)) { say("The file is " + human(file.size) + "; the limit is " + human(Number(box.dataset.max)) + ".", true); return; }
    upload(file);
  });
  box.dataset.ready = "1"; // for tests and scripts: the uploader is listening
})();
