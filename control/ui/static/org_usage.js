// One org's usage charts (uPlot): requests per key and credits per model over the chosen
// window. The time axis is in UTC, or in the browser's zone once the zone switch (app.js) says
// so: it dispatches `nextapi:zone` on document, and the charts are drawn again.
"use strict";

const ORG_PALETTE = ["#0b5cad", "#a4161a", "#2a9d8f", "#6a4c93", "#b35c00", "#1d6b3a", "#8a1c7c", "#3d5a80"];

function orgZoneIsLocal() {
  return window.localStorage.getItem("nextapi.zone") === "local";
}

function orgZoneName(local) {
  return local ? (Intl.DateTimeFormat().resolvedOptions().timeZone || "local") : "UTC";
}

function orgChart(target, title, body, series, width, local) {
  const zone = orgZoneName(local);
  const pad = (n) => String(n).padStart(2, "0");
  const shown = (v) => {
    if (v == null) {
      return "—";
    }
    const d = new Date(v * 1000);
    if (!local) {
      return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
    }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + " " + zone;
  };
  const opts = {
    title: title,
    width: width,
    height: 240,
    scales: { x: { time: true, range: () => [body.window.from, body.window.to] } },
    axes: [{}, {}],
    series: [{ label: "Time (" + zone + ")", value: (u, v) => shown(v) }].concat(series.map((s, n) => ({
      label: s.label,
      stroke: ORG_PALETTE[n % ORG_PALETTE.length],
      width: 2,
    }))),
  };
  // uPlot draws in the browser's zone unless told one: UTC unless the viewer chose theirs.
  if (!local) {
    opts.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
  }
  target.replaceChildren();
  return new uPlot(opts, [body.t].concat(series.map((s) => s.data)), target);
}

function drawOrgCharts(root, body) {
  const empty = document.getElementById("org-charts-empty");
  if (body.t.length === 0) {
    empty.hidden = false;
    root.querySelectorAll("section").forEach((el) => { el.hidden = true; });
    root.dataset.drawn = "empty";
    return;
  }
  const local = orgZoneIsLocal();
  const width = Math.max(320, root.clientWidth - 16);
  orgChart(document.getElementById("chart-requests-by-key"), "Requests per " + body.unit + ", by key",
    body, body.requests_by_key, width, local);
  orgChart(document.getElementById("chart-credits-by-model"), "Credits charged per " + body.unit + ", by model",
    body, body.credits_by_model, width, local);
  root.dataset.zone = orgZoneName(local);
  root.dataset.drawn = "true";
}

document.addEventListener("DOMContentLoaded", async () => {
  const root = document.getElementById("org-charts");
  if (!root) {
    return;
  }
  const answer = await fetch(root.dataset.source, { credentials: "same-origin" });
  if (!answer.ok) {
    root.dataset.drawn = "failed";
    return;
  }
  const body = await answer.json();
  drawOrgCharts(root, body);
  document.addEventListener("nextapi:zone", () => drawOrgCharts(root, body));
});
