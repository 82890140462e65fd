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
})();
