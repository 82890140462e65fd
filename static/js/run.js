/* The run page: its live console, cancel, and jumps from an error to its line. */
(function () {
  "use strict";
  const cfg = window.Okto.pageData("run-config");
  function jump(line) {
    document.querySelectorAll("#code .hit").forEach(e => e.classList.remove("hit"));
    const el = document.getElementById("L" + line);
    if (el) { el.classList.add("hit"); el.scrollIntoView({ block: "center", behavior: "smooth" }); }
  }
  const cancelBtn = document.getElementById("cancel-btn");
  const con = new window.Okto.RunConsole(cfg.runId, {
    output: document.getElementById("console"), statusEl: document.getElementById("run-status"),
    resultEl: document.getElementById("result"), cancelBtn: cancelBtn, onJump: jump,
  });
  if (cancelBtn) cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    try { await window.Okto.api("POST", "/api/runs/" + cfg.runId + "/cancel"); } catch (e) { con.system("Cancel failed: " + e.message); }
  });
})();
