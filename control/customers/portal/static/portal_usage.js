// The portal's usage charts (uPlot): requests and spend per day over the last 30 days, in UTC,
// drawn as the dashboard's org usage tab draws its own (control/ui/static/org_usage.js).
"use strict";

function usageChart(target, title, body, label, data, colour, width) {
  const opts = {
    title: title,
    width: width,
    height: 240,
    scales: { x: { time: true, range: () => [body.window.from, body.window.to] } },
    axes: [{}, {}],
    series: [
      { label: "Day (UTC)", value: (u, v) => (v == null ? "—" : new Date(v * 1000).toISOString().slice(0, 10)) },
      { label: label, stroke: colour, fill: colour + "33", width: 2, paths: uPlot.paths.bars({ size: [0.6, 40] }) },
    ],
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
  };
  target.replaceChildren();
  return new uPlot(opts, [body.t, data], target);
}

document.addEventListener("DOMContentLoaded", async () => {
  const root = document.getElementById("usage-charts");
  if (!root) {
    return;
  }
  const answer = await fetch(root.dataset.source, { credentials: "same-origin" });
  if (!answer.ok) {
    root.dataset.drawn = "failed";
    return;
  }
  const body = await answer.json();
  if (body.t.length === 0) {
    document.getElementById("usage-charts-empty").hidden = false;
    root.querySelectorAll("section").forEach((el) => { el.hidden = true; });
    root.dataset.drawn = "empty";
    return;
  }
  const width = Math.max(320, root.clientWidth - 16);
  usageChart(document.getElementById("chart-requests"), "Requests per day", body, "Requests",
    body.requests, "#0b5cad", width);
  usageChart(document.getElementById("chart-spend"), "Credits charged per day", body, "Credits",
    body.credits, "#a4161a", width);
  root.dataset.drawn = "true";
});
