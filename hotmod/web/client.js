// hotmod live reload: listens to the server's event stream and keeps this page current.
// A code or template change reloads the page; a stylesheet change swaps the stylesheet
// in place (no reload, scroll position and page state kept); a failed reload shows
// where it failed. When the server itself restarts, the page reconnects and reloads.
(() => {
  if (window.__hotmod) return;
  const url = document.currentScript.dataset.events;
  const state = (window.__hotmod = { server: null, connected: false, events: 0 });
  let banner = null;
  let retryMs = 500;

  function showFailure(data) {
    if (!banner) {
      banner = document.createElement("pre");
      banner.id = "hotmod-error";
      banner.style.cssText =
        "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;margin:0;padding:8px 12px;" +
        "max-height:40vh;overflow:auto;background:#3b0d0d;color:#ffd7d7;font:12px/1.4 monospace;" +
        "white-space:pre-wrap;border-top:2px solid #e55";
      banner.title = "hotmod: the previous version is still running (click to hide)";
      banner.onclick = () => banner.remove();
    }
    banner.textContent = data.detail || data.summary;
    if (!banner.isConnected) document.body.appendChild(banner);
  }

  function swapStylesheets(paths) {
    const names = paths.map((p) => p.split("/").pop());
    const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')];
    const named = links.filter((l) => names.includes(new URL(l.href).pathname.split("/").pop()));
    // A stylesheet served under another name (a bundle, a hashed copy): swap them all.
    for (const old of named.length ? named : links) {
      const next = old.cloneNode();
      const href = new URL(old.href);
      href.searchParams.set("hotmod", String(Date.now()));
      next.href = href.href;
      // The old sheet stays until the new one is parsed: no flash of unstyled content.
      next.addEventListener("load", () => old.remove(), { once: true });
      next.addEventListener("error", () => next.remove(), { once: true });
      old.after(next);
    }
  }

  function connect() {
    const source = new EventSource(url);
    source.addEventListener("hello", (e) => {
      const { server } = JSON.parse(e.data);
      if (state.server !== null && state.server !== server) location.reload();
      state.server = server;
      state.connected = true;
      retryMs = 500;
    });
    source.addEventListener("reload", () => location.reload());
    source.addEventListener("css", (e) => {
      state.events++;
      swapStylesheets(JSON.parse(e.data).paths);
    });
    source.addEventListener("failed", (e) => {
      state.events++;
      showFailure(JSON.parse(e.data));
    });
    source.onerror = () => {
      state.connected = false;
      // EventSource retries a dropped connection by itself, but gives up for good after
      // an error response (a proxy's 502 while the server restarts, a 503 when too many
      // pages are open): start over, waiting longer each time up to 10 s.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 10000);
      }
    };
  }
  connect();
})();
