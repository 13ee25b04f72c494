// Evaluated once the navigation has committed; answers
// [href, HTTP status, "http" | "ready" | "timeout", what it waited for].
//
// A page is ready when its own signal says so AND nothing is loading AND
// both have held, with nothing changing, for QUIET ms; then two animation
// frames pass so the pixels are painted. One reading is not enough: a
// real Grafana says "no query running" between a variable query and the
// panel's own query while its plugin chunk loads (Grafana's image
// renderer guards against the same dip with its network-idle and
// query-cycle checks).
// - Scenes (Grafana 10+): __grafanaRunningQueryCount is 0. A scene that
//   has started no query GRACE ms after it appeared (a text panel) is done.
// - Before scenes: window.panelsRendered reaches the number of panels.
// - Any other page (STRICT false): loaded.
new Promise((resolve) => {
  const STRICT = __STRICT__;
  const deadline = Date.now() + __BUDGET__;
  const QUIET = 50;
  const GRACE = 1000;
  const status = (performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0;
  const done = (outcome, why) => resolve(JSON.stringify([location.href, status, outcome, why || '']));
  // An error page (401, 403, 404) gives no ready signal: answer at once.
  if (status >= 400) return done('http');
  const t = window.__fanoutReady || { inflight: 0, changedAt: 0, sceneAt: 0 };
  const signal = () => {
    if (window.__grafanaSceneContext) {
      const count = window.__grafanaRunningQueryCount;
      if (count > 0) return [false, `${count} ${count === 1 ? 'query' : 'queries'} running`];
      if (count === 0) return [true, ''];
      return [performance.now() - t.sceneAt > GRACE, 'the panel to start its query'];
    }
    const panels = document.querySelectorAll('.panel-solo').length
      || document.querySelectorAll("[class$='panel-container']").length;
    if (panels > 0) {
      const rendered = window.panelsRendered || 0;
      return [rendered >= panels, `${rendered} of ${panels} panels rendered`];
    }
    if (STRICT) return [false, "Grafana's ready signal (no scene and no panel on the page)"];
    return [document.readyState === 'complete', 'the page to load'];
  };
  let since = 0;
  const tick = () => {
    const [ready, waiting] = signal();
    const loading = t.inflight > 0
      ? `${t.inflight} ${t.inflight === 1 ? 'request' : 'requests'} in flight`
      : document.readyState !== 'complete' ? 'the page to load' : '';
    const now = performance.now();
    if (ready && !loading) {
      if (!since) since = now;
      if (now - since >= QUIET && now - t.changedAt >= QUIET) {
        requestAnimationFrame(() => requestAnimationFrame(() => done('ready')));
        return;
      }
    } else {
      since = 0;
    }
    if (Date.now() > deadline) {
      done('timeout', [waiting, loading].filter(Boolean).join('; ') || 'the page to stay settled');
      return;
    }
    setTimeout(tick, 16);
  };
  tick();
})
