/* The run page's timeline of device calls: one lane per device, each call a
   bar from its start to its end on an axis from the run's start, labelled
   with its RPC, duration and script line. A click opens the call's line in
   the console (opts.onPick). Data: GET /api/runs/<id>/calls. */
(function () {
  "use strict";

  const el = window.Okto.el;  // common.js

  /* A round step for about `n` ticks over `span` seconds. */
  function step(span, n) {
    const raw = span / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function seconds(s, unit) {
    return unit < 1 ? Math.round(s * 1000) + " ms" : (Math.round(s * 100) / 100) + " s";
  }

  /* box: the element drawn into; opts: {runId, start (epoch s or null), onPick(call), empty} */
  function Timeline(box, opts) {
    this.box = box;
    this.opts = opts;
    this.calls = [];
  }

  Timeline.prototype.load = async function () {
    const res = await fetch("/api/runs/" + this.opts.runId + "/calls", { credentials: "same-origin" });
    if (!res.ok) return null;
    const data = await res.json();
    this.draw(data.calls);
    return data;
  };

  Timeline.prototype.draw = function (calls) {
    this.calls = calls.filter(c => c.at !== null && c.at !== undefined);
    const box = this.box;
    box.innerHTML = "";
    if (!this.calls.length) { box.appendChild(el("p", "muted", this.opts.empty || "No device calls.")); return; }
    const t0 = this.opts.start || Math.min(...this.calls.map(c => c.at));
    const end = Math.max(...this.calls.map(c => c.at + c.latency_s));
    const span = Math.max(end - t0, 0.001);
    const pct = (t) => (100 * (t - t0) / span) + "%";
    const lanes = {};
    const order = [];
    for (const c of this.calls) {
      const key = c.target || "(no device)";
      if (!lanes[key]) {
        const lane = el("div", "lane");
        lane.dataset.device = key;
        lane.appendChild(el("span", "lane-name", key)).title = key;
        lanes[key] = lane.appendChild(el("div", "track"));
        order.push(lane);
      }
      const what = c.method || c.name;
      const ms = (c.latency_s * 1000).toFixed(1) + " ms";
      const bar = el("button", "bar" + (c.ok ? "" : " failed"), what + " " + ms + (c.line ? " · L" + c.line : ""));
      bar.type = "button";
      bar.dataset.seq = c.seq === null ? "" : c.seq;
      bar.dataset.n = c.n;
      bar.style.left = pct(c.at);
      bar.style.width = "max(3px, " + (100 * c.latency_s / span) + "%)";
      bar.title = [c.target, what, ms, c.line ? "line " + c.line : "", c.ok ? "" : "failed",
        "at +" + seconds(c.at - t0, 0.5)].filter(Boolean).join(" · ");
      bar.setAttribute("aria-label", bar.title);
      bar.addEventListener("click", () => {
        box.querySelectorAll(".bar.on").forEach(b => b.classList.remove("on"));
        bar.classList.add("on");
        if (this.opts.onPick) this.opts.onPick(c);
      });
      lanes[key].appendChild(bar);
    }
    order.forEach(lane => box.appendChild(lane));
    const axis = el("div", "axis");
    const unit = step(span, 6);
    for (let t = 0; t <= span + 1e-9; t += unit) {
      const tick = el("span", "tick", "+" + seconds(t, unit));
      tick.style.left = (100 * t / span) + "%";
      axis.appendChild(tick);
    }
    box.appendChild(axis);
  };

  window.Okto = window.Okto || {};
  window.Okto.Timeline = Timeline;
})();
