/* The shop page, progressively: the verdict without a page load, and the camera.
 *
 * Without this script the page still works: the form posts and the page comes back with the verdict.
 * With it, the same form is sent with fetch() to the JSON route (its one-time token included; each answer
 * brings the next token and idempotency key), and the button is held while a code is being checked, so a
 * double click redeems once. Online only: a failed fetch says the discount cannot be checked, never an old
 * verdict. The camera reads QR codes with the browser's BarcodeDetector where it has one, else with the
 * vendored zxing-wasm reader (static/vendor/README.txt), loaded only when first needed.
 */
(function () {
  "use strict";
  var form = document.getElementById("redeem-form");
  var panel = document.getElementById("verdict");
  if (!form || !panel) { return; }
  var input = form.elements.code;
  var button = document.getElementById("redeem-button");
  var cameraButton = document.getElementById("camera-button");
  var cameraBox = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var texts = panel.dataset;
  var busy = false;
  var timing = window.pikaShop = { verdicts: 0, lastMs: null, lastFrameMs: null };

  function part(name) { return panel.querySelector(".verdict-" + name); }

  var hold = null;

  function show(v) {
    // As at the till, a verdict goes back to "ready" by itself: the next customer never sees the last one's.
    clearTimeout(hold);
    if (v.state !== "working" && v.state !== "ready") {
      hold = setTimeout(function () {
        show({ state: "ready", symbol: "", headline: texts.ready, details: texts.readyDetails, reason: "" });
      }, Number(texts.holdS || 10) * 1000);
    }
    panel.className = "verdict " + v.state;
    panel.dataset.reason = v.reason || "";
    part("symbol").textContent = v.symbol || "";
    ["headline", "discount", "title", "details"].forEach(function (name) {
      var el = part(name);
      el.textContent = v[name] || "";
      el.hidden = !v[name];
    });
  }

  function said(state, headline, details, reason) {
    show({ state: state, symbol: state === "working" ? "…" : "✕", headline: headline, details: details || "",
           reason: reason || "" });
  }

  function fillToday(today) {
    var body = document.querySelector("#today tbody");
    var summary = document.getElementById("today-summary");
    if (!body || !today) { return; }
    summary.textContent = today.summary;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    today.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = row.state;
      var cells = [row.time, null, row.title, row.discount, row.how, row.code];
      cells.forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 1) {
          var tag = document.createElement("span");
          tag.className = "tag " + (row.state === "accepted" ? "good" : row.state === "caution" ? "warn" : "bad");
          tag.textContent = row.headline;
          td.appendChild(tag);
        } else {
          td.textContent = text;
        }
        if (i === 3) { td.className = "num"; }
        if (i === 5) { td.className = "code-small"; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function painted(started, frameAt) {
    // The verdict counts as shown once the browser has painted it (two animation frames on).
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        var now = performance.now();
        timing.lastMs = now - started;
        timing.lastFrameMs = frameAt === null ? null : now - frameAt;
        timing.verdicts += 1;
        panel.dataset.shown = String(timing.verdicts);
      });
    });
  }

  function redeem(method, frameAt) {
    if (busy) { return; }
    busy = true;
    button.disabled = true;
    var started = performance.now();
    form.elements.method.value = method;
    said("working", texts.checking, "");
    var body = new URLSearchParams(new FormData(form));
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, 15000);
    fetch(form.dataset.json, { method: "POST", body: body, credentials: "same-origin", redirect: "manual",
                               signal: abort.signal, headers: { "Accept": "application/json" } })
      .then(function (answer) {
        if (answer.type === "opaqueredirect") {  // the shift's session ended: the page asks for a sign-in
          window.location.reload();
          return null;
        }
        var type = answer.headers.get("content-type") || "";
        if (type.indexOf("application/json") === 0) { return answer.json(); }
        if (answer.status >= 500) { throw new Error("backend " + answer.status); }
        // A form token refused (another tab used it, the page is old): nothing was redeemed.
        said("caution", texts.stale, texts.doNotGive, "stale");
        setTimeout(function () { window.location.reload(); }, 1500);
        return null;
      })
      .then(function (data) {
        if (!data) { return; }
        form.elements.csrf.value = data.csrf;
        form.elements.key.value = data.key;
        show(data.verdict);
        fillToday(data.today);
        input.value = "";
        painted(started, frameAt);
      })
      .catch(function () {
        // Online only: no verdict is shown that the backend did not give just now.
        said("refused", texts.offline, texts.offlineDetails, "offline");
        painted(started, frameAt);
      })
      .then(function () {
        clearTimeout(timer);
        busy = false;
        button.disabled = false;
        form.elements.method.value = "typed";
        input.focus();
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.value.trim()) { input.focus(); return; }
    redeem("typed", null);
  });

  // --- the camera ---------------------------------------------------------------------------------

  var canCamera = window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
  if (!canCamera) {
    document.getElementById("camera-why").hidden = false;
    return;
  }
  cameraButton.hidden = false;
  var stream = null;
  var decoder = null;
  var canvas = document.createElement("canvas");

  function loadZxing() {
    return new Promise(function (resolve, reject) {
      if (window.ZXingWASM) { resolve(window.ZXingWASM); return; }
      var script = document.createElement("script");
      script.src = form.dataset.zxingJs;
      script.onload = function () { resolve(window.ZXingWASM); };
      script.onerror = reject;
      document.head.appendChild(script);
    }).then(function (zxing) {
      var wasm = form.dataset.zxingWasm;
      zxing.prepareZXingModule({
        overrides: { locateFile: function (path, prefix) { return path.endsWith(".wasm") ? wasm : prefix + path; } },
        fireImmediately: true
      });
      return function (frame) {
        var context = canvas.getContext("2d", { willReadFrequently: true });
        var data = context.getImageData(0, 0, frame.width, frame.height);
        return zxing.readBarcodes(data, { formats: ["QRCode"], maxNumberOfSymbols: 1, tryHarder: true })
          .then(function (found) { return found.length && found[0].isValid ? found[0].text : null; });
      };
    });
  }

  function makeDecoder() {
    if (decoder) { return Promise.resolve(decoder); }
    var native = "BarcodeDetector" in window
      ? window.BarcodeDetector.getSupportedFormats().catch(function () { return []; })
      : Promise.resolve([]);
    return native.then(function (formats) {
      if (formats.indexOf("qr_code") >= 0) {
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return function () {
          return detector.detect(canvas).then(function (found) { return found.length ? found[0].rawValue : null; });
        };
      }
      return loadZxing();
    }).then(function (made) { decoder = made; return made; });
  }

  function stopCamera() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.srcObject = null;
    cameraBox.hidden = true;
    cameraButton.disabled = false;
  }

  function scan() {
    if (!stream) { return; }
    if (busy || video.readyState < 2 || !video.videoWidth) { setTimeout(scan, 100); return; }
    var frameAt = performance.now();
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0);
    decoder({ width: canvas.width, height: canvas.height }).then(function (text) {
      if (!stream) { return; }
      if (text) {
        stopCamera();
        input.value = text;
        redeem("camera", frameAt);
      } else {
        setTimeout(scan, 80);
      }
    }, function () { setTimeout(scan, 250); });
  }

  cameraButton.addEventListener("click", function () {
    cameraButton.disabled = true;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
      .then(function (opened) {
        stream = opened;
        video.srcObject = opened;
        cameraBox.hidden = false;
        return Promise.all([video.play(), makeDecoder()]);
      })
      .then(scan)
      .catch(function () {
        stopCamera();
        said("caution", texts.cameraFailed, "", "camera");
      });
  });
  document.getElementById("camera-stop").addEventListener("click", stopCamera);
}());
