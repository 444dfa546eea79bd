// The dashboard's behaviour: the overview's charts (uPlot), the zone switch and the copy button. No inline
// script anywhere: the CSP allows only files from this origin.
"use strict";

// The charts' zone: UTC, or the browser's once the viewer picks it (the zone switch below).
// Only the axis labels and the hover values move; the buckets stay as the API cut them.
function chartZone() {
  return zoneIsLocal() ? browserZone() : "UTC";
}

function moment(seconds, zone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(seconds * 1000));
  const part = (type) => parts.find((p) => p.type === type).value;
  return part("year") + "-" + part("month") + "-" + part("day") + " " + part("hour") + ":" + part("minute");
}

function chart(target, title, window, xs, series, width) {
  const zone = chartZone();
  const opts = {
    title: title,
    width: width,
    height: 240,
    // The whole chosen range, not just the span that has data.
    scales: { x: { time: true, range: () => [window.from, window.to] } },
    axes: [{}, {}],
    series: [{ label: "Time (" + zone + ")", value: (u, v) => v == null ? "—" : moment(v, zone) + " " + zone }].concat(series),
  };
  // uPlot draws the time axis in local time unless told the zone: the one chosen.
  opts.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), zone === "UTC" ? "Etc/UTC" : zone);
  target.replaceChildren();
  return new uPlot(opts, [xs].concat(series.map((s) => s.data)), target);
}

function drawSeries(root, body) {
  const s = body.series;
  const width = Math.max(320, root.clientWidth - 16);
  const line = (label, data, stroke) => ({ label: label, data: data, stroke: stroke, width: 2 });
  const plots = [
    chart(document.getElementById("chart-requests"), "Requests per " + body.unit, body.window, s.t,
      [line("Requests", s.requests, "#0b5cad"), line("Errors", s.errors, "#a4161a")], width),
    chart(document.getElementById("chart-latency"), "Latency (ms)", body.window, s.t,
      [line("p50", s.p50, "#2a9d8f"), line("p95", s.p95, "#e76f51")], width),
    chart(document.getElementById("chart-credits"), "Credits charged per " + body.unit, body.window, s.t,
      [line("Credits", s.credits, "#6a4c93")], width),
  ];
  root.dataset.zone = chartZone();
  return plots;
}

async function drawCharts(root) {
  const answer = await fetch(root.dataset.source, { credentials: "same-origin" });
  if (!answer.ok) {
    return;
  }
  const body = await answer.json();
  const empty = document.getElementById("charts-empty");
  if (body.series.t.length === 0) {
    empty.hidden = false;
    root.querySelectorAll("section").forEach((el) => { el.hidden = true; });
    root.dataset.drawn = "true";
    return;
  }
  let plots = drawSeries(root, body);
  root.dataset.drawn = "true";
  document.addEventListener("nextapi:zone", () => {
    plots.forEach((plot) => plot.destroy());
    plots = drawSeries(root, body);
  });
}

// Every time is rendered in UTC as <time datetime="…Z">; a column's header names the zone in
// <span class="zone">. The switch rewrites both to the browser's zone (and back), remembered.
const ZONE_KEY = "nextapi.zone";

function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
}

function showTimes(root, local) {
  const zone = local ? browserZone() : "UTC";
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const moment = new Date(el.getAttribute("datetime"));
    if (!el.dataset.utc) {
      el.dataset.utc = el.textContent;
    }
    if (!local) {
      el.textContent = el.dataset.utc;
      return;
    }
    const pad = (n) => String(n).padStart(2, "0");
    el.textContent = moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      " " + pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + ":" + pad(moment.getSeconds());
  });
  root.querySelectorAll(".zone").forEach((el) => { el.textContent = zone; });
}

function zoneIsLocal() {
  return window.localStorage.getItem(ZONE_KEY) === "local";
}

function setUpZoneSwitch() {
  const button = document.getElementById("zone-switch");
  const label = () => {
    const local = zoneIsLocal();
    button.setAttribute("aria-pressed", String(local));
    button.textContent = local ? "Show times in UTC" : "Show times in my zone (" + browserZone() + ")";
  };
  if (button) {
    label();
    button.addEventListener("click", () => {
      window.localStorage.setItem(ZONE_KEY, zoneIsLocal() ? "utc" : "local");
      label();
      showTimes(document, zoneIsLocal());
      document.dispatchEvent(new CustomEvent("nextapi:zone"));
    });
  }
  showTimes(document, zoneIsLocal());
  // Parts swapped in by htmx arrive in UTC, like every page.
  document.body.addEventListener("htmx:afterSwap", (event) => showTimes(event.target, zoneIsLocal()));
}

document.addEventListener("DOMContentLoaded", () => {
  setUpZoneSwitch();
  const charts = document.getElementById("charts");
  if (charts) {
    drawCharts(charts);
  }
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
    });
    button.hidden = false; // shown once it works: without this script it would do nothing
  });
});
