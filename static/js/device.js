/* The device page: set its alias, delete it (through the REST API, where roles apply). */
(function () {
  "use strict";
  const url = "/api/devices/" + encodeURIComponent(window.Okto.pageData("device-serial"));
  const err = document.getElementById("device-error");
  function fail(e) { err.textContent = e.message; err.style.display = ""; }
  const form = document.getElementById("alias-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await window.Okto.api("PATCH", url, { alias: document.getElementById("alias").value }); location.reload(); } catch (e) { fail(e); }
  });
  const del = document.getElementById("delete-device");
  if (del) del.addEventListener("click", async () => {
    if (!confirm("Delete this device from the database? If it connects again it is new.")) return;
    try { await window.Okto.api("DELETE", url); location.href = "/devices/"; } catch (e) { fail(e); }
  });
  /* Twins: made and run by the twin host; the twin's page shows its state. */
  const serial = window.Okto.pageData("device-serial");
  const twinUrl = "/api/twins/" + encodeURIComponent(serial);
  const make = document.getElementById("twin-device");
  if (make) make.addEventListener("click", async () => {
    try {
      const twin = await window.Okto.api("POST", "/api/twins", { source: serial });
      location.href = "/devices/" + encodeURIComponent(twin.serial) + "/";
    } catch (e) { fail(e); }
  });
  const reset = document.getElementById("twin-reset");
  if (reset) reset.addEventListener("click", async () => {
    try { await window.Okto.api("POST", "/api/twin-resets", { serial: serial }); location.reload(); } catch (e) { fail(e); }
  });
  const drop = document.getElementById("twin-delete");
  if (drop) drop.addEventListener("click", async () => {
    if (!confirm("Delete this twin? Its snapshot stays.")) return;
    try { await window.Okto.api("DELETE", twinUrl); location.href = "/devices/"; } catch (e) { fail(e); }
  });
  /* A twin being made: show its state as it changes. */
  const state = document.getElementById("twin-state");
  if (state && ["requested", "snapshotting"].includes(state.textContent)) {
    const poll = setInterval(async () => {
      try {
        const twin = await window.Okto.api("GET", twinUrl);
        state.textContent = twin.state;
        if (!["requested", "snapshotting"].includes(twin.state)) { clearInterval(poll); location.reload(); }
      } catch (e) { clearInterval(poll); fail(e); }
    }, 1000);
  }
})();
