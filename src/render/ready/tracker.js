// Installed in every pool tab before any page script runs
// (Page.addScriptToEvaluateOnNewDocument). It records what the ready
// check needs and a page cannot tell by itself: how many requests are in
// flight (fetch, XMLHttpRequest, and scripts and stylesheets added by
// script, such as a panel's plugin chunk), when anything the check reads
// last changed, and when the scene appeared. WebSocket and EventSource
// (Grafana Live) are left alone: they stay open for good.
(() => {
  if (window.__fanoutReady) return;
  const t = (window.__fanoutReady = { inflight: 0, changedAt: performance.now(), sceneAt: 0 });
  const touch = () => { t.changedAt = performance.now(); };
  const begin = () => { t.inflight += 1; touch(); };
  const end = () => { t.inflight = Math.max(0, t.inflight - 1); touch(); };

  const fetch = window.fetch;
  if (fetch) {
    window.fetch = function (...args) {
      begin();
      return fetch.apply(window, args).finally(end);
    };
  }
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    begin();
    this.addEventListener('loadend', end, { once: true });
    return send.apply(this, args);
  };
  const loads = (node) =>
    (node instanceof HTMLScriptElement && node.src) ||
    (node instanceof HTMLLinkElement && node.rel === 'stylesheet' && node.href);
  const watch = (node) => {
    if (!loads(node)) return;
    begin();
    const once = () => {
      node.removeEventListener('load', once);
      node.removeEventListener('error', once);
      end();
    };
    node.addEventListener('load', once);
    node.addEventListener('error', once);
  };
  for (const name of ['appendChild', 'insertBefore']) {
    const original = Node.prototype[name];
    Node.prototype[name] = function (node, ...rest) {
      watch(node);
      return original.call(this, node, ...rest);
    };
  }

  // Grafana's own signals, seen as they are set, not only when polled.
  const observe = (name, onSet) => {
    let value;
    Object.defineProperty(window, name, {
      configurable: true,
      get: () => value,
      set: (v) => { value = v; onSet(v); touch(); },
    });
  };
  observe('__grafanaSceneContext', (v) => { if (v && !t.sceneAt) t.sceneAt = performance.now(); });
  observe('__grafanaRunningQueryCount', () => {});
  observe('panelsRendered', () => {});
})();
