/* On every page. The Content-Security-Policy allows no inline script or event
   handler: a form that asks before it submits says so in data-confirm. */
(function () {
  "use strict";
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  });
  /* The JSON a page hands its script (Django's json_script): data, never code. */
  window.Okto = window.Okto || {};
  window.Okto.pageData = function (id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  };
  /* An element with a class and a text (text, never HTML). */
  window.Okto.el = function (tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };
})();
