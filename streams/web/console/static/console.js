// Live updates for the console, by server-sent events. The server renders (and escapes) all
// HTML; this script only swaps it in, so there is one place where untrusted text is handled.
"use strict";

function listen(url, event, onData) {
  let delay = 1000;
  const connect = () => {
    const source = new EventSource(url);
    source.addEventListener(event, (msg) => { delay = 1000; onData(JSON.parse(msg.data)); });
    source.onerror = () => {
      source.close();
      // EventSource retries by itself, but not after a 401 (signed out): back off and retry.
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  };
  connect();
}

function liveList(tbody) {
  const status = document.getElementById("live-status");
  listen(tbody.dataset.live, "incidents", (data) => {
    const before = Number(status.dataset.count || 0);
    tbody.innerHTML = data.rows;
    status.dataset.count = data.count;
    // The words come from the server in the user's language; only the count is filled here.
    const fresh = data.count > before
      ? " " + (data.fresh || "{n} new.").replace("{n}", String(data.count - before)) : "";
    status.textContent = (data.status || `${data.count} shown, ${data.open} open.`) + fresh;
  });
}

function liveIncident(box) {
  let seen = null;
  listen(box.dataset.live, "incident", async (data) => {
    const key = `${data.state}|${data.updated}|${data.timeline}`;
    if (seen === null) { seen = key; return; }
    if (key === seen) return;
    seen = key;
    const page = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!page.ok) return;
    const doc = new DOMParser().parseFromString(await page.text(), "text/html");
    for (const id of ["incident-live", "tl", "playbook"]) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (!fresh || !old) continue;
      const whole = id !== "incident-live";  // headings stand for their whole section
      (whole ? old.parentElement : old).replaceWith(whole ? fresh.parentElement : fresh);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.getElementById("incident-rows");
  if (rows && rows.dataset.live) liveList(rows);
  const box = document.getElementById("incident-live");
  if (box && box.dataset.live) liveIncident(box);
});
