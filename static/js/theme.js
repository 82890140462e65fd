/* Light or dark: the choice made with the top bar's toggle (kept in this
   browser), else the system's. Loaded in <head> so that a page never flashes
   in the other theme. */
(function () {
  "use strict";
  const KEY = "okto.theme";
  const root = document.documentElement;
  const stored = localStorage.getItem(KEY);
  if (stored === "dark" || stored === "light") root.dataset.theme = stored;
  const system = window.matchMedia("(prefers-color-scheme: dark)");

  function dark() { return root.dataset.theme ? root.dataset.theme === "dark" : system.matches; }
  function changed() { document.dispatchEvent(new CustomEvent("okto-theme", { detail: { dark: dark() } })); }
  system.addEventListener("change", changed);

  window.Okto = window.Okto || {};
  window.Okto.isDark = dark;
  /* The toggle: the other theme than the one shown. */
  window.Okto.toggleTheme = function () {
    root.dataset.theme = dark() ? "light" : "dark";
    localStorage.setItem(KEY, root.dataset.theme);
    changed();
  };
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (button) button.addEventListener("click", window.Okto.toggleTheme);
  });
})();
