// Live updates of a page while an apply or a reconcile runs. The server waits on the cluster's
// watches and sends an event when something the page shows changed; the page's live parts are
// then read again and replaced. Without this script every page reads fully: reload for news.
"use strict";
(() => {
  const main = document.getElementById("main");
  const status = document.getElementById("live-status");
  if (!main || !main.dataset.live || !status || !window.EventSource) return;
  const source = new EventSource(main.dataset.live);
  let waiting = false;
  let again = false;
  // One read at a time; changes that come meanwhile are read once more, after it.
  const refresh = async () => {
    if (waiting) { again = true; return; }
    waiting = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`the page answered ${response.status}`);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of document.querySelectorAll("[data-live-part]")) {
        const replacement = fresh.getElementById(part.id);
        // A part the reader is in keeps its focus: it is replaced at the next change.
        if (replacement && !part.contains(document.activeElement)) part.replaceWith(replacement);
      }
      status.textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      status.textContent = `Live update failed: ${err.message}; reload the page.`;
    } finally {
      waiting = false;
      if (again) { again = false; refresh(); }
    }
  };
  source.addEventListener("changed", refresh);
  source.addEventListener("failed", (event) => {
    source.close();
    status.textContent = `Live updates stopped: ${event.data}`;
  });
  status.textContent = "Live: this page updates itself as the cluster changes.";
})();
