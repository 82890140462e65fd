/* The run page: its live console, cancel, jumps from an error to its line, and
   the timeline of device calls (a click opens the call's line in the console). */
(function () {
  "use strict";
  const cfg = window.Okto.pageData("run-config");
  const POLL_MS = 2000;  // the timeline of a running run is read again this often
  function jump(line) {
    document.querySelectorAll("#code .hit").forEach(e => e.classList.remove("hit"));
    const el = document.getElementById("L" + line);
    if (el) { el.classList.add("hit"); el.scrollIntoView({ block: "center", behavior: "smooth" }); }
  }
  let ended = cfg.final;
  const timeline = new window.Okto.Timeline(document.getElementById("timeline"), {
    runId: cfg.runId, start: cfg.started,
    empty: cfg.final ? "This run made no device call." : "No device call yet.",
    onPick: (call) => {
      if (call.seq) con.list.openCall(call.seq);
      else if (call.line) jump(call.line);
    },
  });
  const cancelBtn = document.getElementById("cancel-btn");
  const con = new window.Okto.RunConsole(cfg.runId, {
    output: document.getElementById("console"), statusEl: document.getElementById("run-status"),
    resultEl: document.getElementById("result"), cancelBtn: cancelBtn, onJump: jump,
    onStatus: (status, msg) => {
      if (msg && msg.type === "run" && msg.started) timeline.opts.start = msg.started;
    },
    onEnd: () => {
      ended = true;
      timeline.opts.empty = "This run made no device call.";
      timeline.load();
    },
  });
  async function poll() {
    await timeline.load().catch(() => null);
    if (!ended) setTimeout(poll, POLL_MS);
  }
  poll();
  if (cancelBtn) cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    try { await window.Okto.api("POST", "/api/runs/" + cfg.runId + "/cancel"); } catch (e) { con.system("Cancel failed: " + e.message); }
  });
})();
