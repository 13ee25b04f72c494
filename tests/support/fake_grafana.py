#!/usr/bin/env python3
"""Fake Grafana for fanout's Rust integration tests (panel rendering).

fanout renders Grafana panels to PNG with headless Chromium.  This server
imitates the parts of Grafana that matter for that: an auth-protected
``/d-solo`` page whose data arrives *late* (over a second, authenticated
request), Grafana's "panel is done" signals, and a few helper endpoints for
redirect / request-leak / generic-chart tests.  Python 3.11 standard library
only (http.server + ssl).

How the harness uses it:

1. Spawn ``python3 tests/support/fake_grafana.py --cert C.pem --key K.pem
   --token TOKEN [options]`` with stdin and stdout piped.  The harness makes a
   self-signed certificate for *another* host name (e.g. ``grafana.invalid``),
   so Chromium sees a name mismatch on 127.0.0.1, exactly as in the field.
2. Read the first stdout line, ``READY <port>``: the server listens on
   127.0.0.1 at that (kernel-chosen) port.  Nothing else goes to stdout.
3. Render, then read ``--log`` (one JSON object per line, one line per
   request, written and flushed *before* the request is answered, including
   401/403/404 answers)::

       {"method": "GET", "path": "/d-solo/abc/slug",
        "query": "orgId=1&panelId=2",      # raw query string, "" if none
        "authorization": "Bearer TOKEN",   # header value, or null
        "host": "127.0.0.1:PORT"}          # Host header, or null

4. Drop the child's stdin (or let the test process die): on stdin EOF the
   server exits.  SIGTERM (and SIGINT) also stop it.

Options:
  --cert PEM --key PEM   serve HTTPS with this certificate (required unless
                         --plain)
  --plain                serve plain HTTP instead
  --token TOKEN          required bearer token (``Authorization: Bearer TOKEN``)
  --org N                the only valid organisation id (default 1)
  --delay-ms N           how late /api/ds/query answers (default 400)
  --mode scenes|legacy|staged
                         which "panel rendered" signal the pages use
                         (default scenes); staged: scenes as a real Grafana
                         runs them, with a moment where the signal says
                         "done" before the panel has started (see below)
  --plugin-ms N          how late the staged page's plugin chunk answers
                         (default 300)
  --log FILE             append the per-request JSON lines here
  --verbose              also write a short access log line to stderr

Endpoints (auth = ``Authorization: Bearer TOKEN`` required, else
401 ``{"message":"Unauthorized"}``):

``GET /d-solo/<uid>[/<slug>]?orgId=&panelId=&from=&to=&width=&height=&tz=&var-*=``
    auth; ``orgId`` present and != --org -> 403 ``{"message":"Access denied
    to org"}``.  Otherwise an HTML page (``text/html; charset=utf-8``) with
    ``html,body{margin:0;height:100%;background:#111217}``, a loading bar
    ``<div aria-label="Panel loading bar" class="panel-loading">`` and a
    ``<canvas>`` sized to innerWidth x innerHeight at draw time.

    * scenes mode: a script in <head> sets ``window.__grafanaSceneContext =
      {}`` and ``window.__grafanaRunningQueryCount = 1`` synchronously before
      anything else; when done it sets ``__grafanaRunningQueryCount = 0``.
    * legacy mode: the panel is wrapped in ``<div class="panel-solo"><div
      class="panel-container">...</div></div>``; ``window.panelsRendered = 0``
      at start, ``= 1`` when done.

    The page then fetches ``/api/ds/query?panelId=<panelId>`` (same origin;
    the browser adds no Authorization header by itself, so the renderer must
    add it).  On arrival it removes the loading bar, draws ~40 solid bars of
    exactly #ff5722 (rgb(255,87,34), integer-aligned fillRects, so plenty of
    pixels are exactly that colour) on the dark background, waits one
    requestAnimationFrame and then signals "done".  If the fetch fails (e.g.
    401 because the renderer did not send the token) it draws nothing, shows
    the text "No data" and still signals "done" (Grafana's error state).

    * staged mode: like a real Grafana 11 d-solo page, nothing is set in
      <head>. 50 ms in, the scene activates (``__grafanaSceneContext =
      {}``) and a variable query runs (count 1, ``/api/ds/query?variable=1``
      answered at once, count back to 0). Only then does the panel load its
      datasource plugin chunk as a ``<script>`` (``/public/plugins/ds.js``,
      answered after --plugin-ms), 20 ms later start its query (count 1),
      draw, and after one animation frame set the count to 0. Between the
      variable and the panel query the page says "no query running" while
      showing nothing: a renderer that trusts one reading captures it blank.

    * realistic mode: shaped like a Grafana 11/12 d-solo page as it loads
      cold (counted in the README under Charts): the document links 2
      stylesheets (which load 3 fonts and 2 images) and 7 scripts; the app
      then loads 18 more script chunks in three waves (route, scenes,
      panel plugin), reads ``/api/user``, ``/api/dashboards/uid/<uid>``
      and ``/api/annotations``, runs a variable query
      (``/api/variables/query``), then the panel's
      query (``--delay-ms``), and draws ``--draw-ms`` later. It sets both
      signals: the scene's query count and, when drawn,
      ``panelsRendered = 1`` on a ``.panel-solo`` (so the puppeteer
      baseline, which waits for ``panelsRendered``, runs on it too).
      Static assets answer after ``--asset-ms``. 38 requests in all.

``GET /public/build/<name>``
    no auth; the realistic page's scripts, stylesheets, fonts and images,
    after --asset-ms.

``GET /api/user``, ``/api/dashboards/uid/<uid>``, ``/api/annotations``, ``/api/variables/query``
    auth; small JSON, at once.

``GET /public/plugins/<name>.js``
    no auth; a script that sets ``window.__fgPlugin = true``, after
    --plugin-ms.

``GET|POST /api/ds/query?panelId=N``
    auth; answers after --delay-ms with ``{"series": [...40 numbers...],
    "color": "#ff5722", "panelId": "N"}``.

``GET /api/health``
    no auth; ``{"database":"ok"}``.

``GET /api/org``
    auth; header ``X-Grafana-Org-Id`` present and != --org -> 403; else
    ``{"id": ORG, "name": "Main Org."}``.

``GET /redirect?to=URL``
    auth; 302 to URL (400 if ``to`` is missing).

``GET /leak?to=URL``
    auth; page that sets the scenes signals (context {}, count 1) at start,
    then ``fetch(URL, {mode:'no-cors'})`` and adds ``<img src=URL>``, waits
    until both have settled (success or error; capped at 10 s so a hung
    request cannot wedge the page forever), paints the whole canvas #ff5722
    and sets ``__grafanaRunningQueryCount = 0`` after one animation frame.
    Tests point URL at another local server and assert it received nothing.

``GET /plain``
    no auth; static page without any Grafana signal that immediately paints
    the whole canvas #2196f3 (the generic ``{"url": ...}`` chart case).

Anything else -> 404 ``{"message":"Not found"}``.  HEAD is answered like GET
without a body.  Every response carries ``Cache-Control: no-store``.
"""

import argparse
import hmac
import json
import math
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

PANEL_COLOR = "#ff5722"
PLAIN_COLOR = "#2196f3"
BACKGROUND = "#111217"

# A fixed, deterministic series of 40 positive values (roughly 25..95).
SERIES = [
    round(60 + 25 * math.sin(i / 4.0) + 10 * math.cos(i / 1.7), 1) for i in range(40)
]

MAX_BODY = 1 << 20


def js(value):
    """JSON literal that is safe to embed inside an inline <script>."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


BASE_CSS = (
    "html,body{margin:0;height:100%;background:#111217}"
    "body{overflow:hidden;color:#ccccdc;"
    "font-family:Inter,Helvetica,Arial,sans-serif}"
    ".panel-root,.panel-solo,.panel-container{position:relative;"
    "width:100%;height:100%}"
    "canvas{display:block;position:absolute;top:0;left:0;width:100%;height:100%;"
    "z-index:1}"
    ".panel-loading{position:absolute;top:0;left:0;right:0;height:2px;"
    "background:#3d71d9;z-index:2}"
    ".panel-no-data{position:absolute;top:0;left:0;right:0;bottom:0;"
    "display:flex;align-items:center;justify-content:center;font-size:16px;"
    "z-index:2}"
)

# Shared drawing helpers (plain ES5-ish JS, no dependencies).
JS_HELPERS = r"""
// Size the canvas buffer to the viewport (read now, at draw time) and paint;
// repaint whenever the viewport changes size, like a Grafana panel re-layout.
function fgPaint(c, paint) {
  function redraw() {
    var w = Math.max(1, window.innerWidth | 0), h = Math.max(1, window.innerHeight | 0);
    c.width = w; c.height = h;
    var ctx = c.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    paint(ctx, w, h);
  }
  redraw();
  window.addEventListener('resize', redraw);
}
function fgAfterPaint(fn) {
  requestAnimationFrame(function () { fn(); });
}
"""


def dsolo_page(mode, query_url):
    if mode == "scenes":
        head_signal = (
            "window.__grafanaSceneContext = {};"
            "window.__grafanaRunningQueryCount = 1;"
        )
        done = "window.__grafanaRunningQueryCount = 0;"
        open_wrap, close_wrap = '<div class="panel-root">', "</div>"
    else:
        head_signal = "window.panelsRendered = 0;"
        done = "window.panelsRendered = 1;"
        open_wrap = '<div class="panel-solo"><div class="panel-container">'
        close_wrap = "</div></div>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<script>{head_signal}</script>
<title>Grafana</title>
<style>{BASE_CSS}</style>
</head><body>
{open_wrap}<div aria-label="Panel loading bar" class="panel-loading"></div><canvas id="panel-canvas"></canvas>{close_wrap}
<script>
(function () {{
{JS_HELPERS}
  var QUERY_URL = {js(query_url)};
  function signalDone() {{ fgAfterPaint(function () {{ {done} }}); }}
  function removeLoadingBar() {{
    var bar = document.querySelector('.panel-loading');
    if (bar && bar.parentNode) bar.parentNode.removeChild(bar);
  }}
  function draw(data) {{
    fgPaint(document.getElementById('panel-canvas'), function (ctx, W, H) {{
      chart(ctx, W, H, data);
    }});
  }}
  function chart(ctx, W, H, data) {{
    var series = data.series, n = series.length;
    var max = 0;
    for (var i = 0; i < n; i++) max = Math.max(max, series[i]);
    if (!(max > 0)) max = 1;
    // grid lines (not the series colour)
    ctx.fillStyle = '#2c3235';
    for (var g = 1; g < 5; g++) ctx.fillRect(0, Math.floor(H * g / 5), W, 1);
    // solid, integer-aligned bars: a filled "area" chart without anti-aliasing
    ctx.fillStyle = data.color;
    var top = Math.floor(H * 0.05);
    var slot = W / n;
    for (var j = 0; j < n; j++) {{
      var x0 = Math.floor(j * slot), x1 = Math.floor((j + 1) * slot);
      var bw = Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0));
      var bh = Math.max(1, Math.round((H - top) * series[j] / max));
      ctx.fillRect(x0, H - bh, bw, bh);
    }}
  }}
  function noData() {{
    var box = document.createElement('div');
    box.className = 'panel-no-data';
    box.textContent = 'No data';
    document.body.appendChild(box);
  }}
  fetch(QUERY_URL, {{ credentials: 'same-origin', headers: {{ 'Accept': 'application/json' }} }})
    .then(function (r) {{
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }})
    .then(function (data) {{
      if (!data || !Array.isArray(data.series) || typeof data.color !== 'string')
        throw new Error('bad payload');
      removeLoadingBar();
      draw(data);
    }})
    .catch(function (e) {{
      window.__fakeGrafanaError = String(e);
      removeLoadingBar();
      noData();
    }})
    .then(signalDone);
}})();
</script>
</body></html>
"""


def staged_page(query_url):
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Grafana</title>
<style>{BASE_CSS}</style>
</head><body>
<div class="panel-root"><div aria-label="Panel loading bar" class="panel-loading"></div><canvas id="panel-canvas"></canvas></div>
<script>
(function () {{
{JS_HELPERS}
  var QUERY_URL = {js(query_url)};
  function running(delta) {{
    window.__grafanaRunningQueryCount = (window.__grafanaRunningQueryCount || 0) + delta;
  }}
  function get(url) {{
    return fetch(url, {{ credentials: 'same-origin', headers: {{ 'Accept': 'application/json' }} }})
      .then(function (r) {{ if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); }});
  }}
  function loadPlugin() {{
    return new Promise(function (resolve) {{
      var s = document.createElement('script');
      s.src = '/public/plugins/ds.js';
      s.onload = s.onerror = function () {{ resolve(); }};
      document.head.appendChild(s);
    }});
  }}
  setTimeout(function () {{
    window.__grafanaSceneContext = {{}};
    running(1);
    get('/api/ds/query?variable=1').catch(function () {{}}).then(function () {{
      running(-1);
      return loadPlugin();
    }}).then(function () {{
      return new Promise(function (r) {{ setTimeout(r, 20); }});
    }}).then(function () {{
      running(1);
      return get(QUERY_URL);
    }}).then(function (data) {{
      var bar = document.querySelector('.panel-loading');
      if (bar) bar.parentNode.removeChild(bar);
      fgPaint(document.getElementById('panel-canvas'), function (ctx, W, H) {{
        ctx.fillStyle = data.color;
        ctx.fillRect(0, Math.floor(H / 3), W, H - Math.floor(H / 3));
      }});
    }}).catch(function (e) {{ window.__fakeGrafanaError = String(e); }})
      .then(function () {{ fgAfterPaint(function () {{ running(-1); }}); }});
  }}, 50);
}})();
</script>
</body></html>
"""


# The realistic page's static assets: what a cold Grafana 11/12 d-solo load
# fetches besides its document (see the module doc and the README).
INITIAL_SCRIPTS = [f"app-{i}.js" for i in range(7)]
CHUNK_WAVES = [
    [f"route-{i}.js" for i in range(6)],
    [f"scenes-{i}.js" for i in range(8)],
    [f"panel-{i}.js" for i in range(4)],
]
STYLESHEETS = ["grafana.app.css", "grafana.dark.css"]
FONTS = ["inter-regular.woff2", "inter-medium.woff2", "roboto-mono.woff2"]
IMAGES = ["grafana_icon.svg", "bg.svg"]


def realistic_page(uid, query_url):
    links = "".join(
        f'<link rel="stylesheet" href="/public/build/{name}">' for name in STYLESHEETS
    )
    scripts = "".join(
        f'<script src="/public/build/{name}"></script>' for name in INITIAL_SCRIPTS
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Grafana</title>
<style>{BASE_CSS}</style>
{links}
{scripts}
</head><body>
<div class="panel-solo"><div class="panel-container"><div aria-label="Panel loading bar" class="panel-loading"></div><canvas id="panel-canvas"></canvas></div></div>
<div style="position:absolute;left:-9999px"><span class="fg0 im0">Grafana</span><span class="fg1 im1">Panel</span><span class="fg2">42</span></div>
<script>
(function () {{
{JS_HELPERS}
  var QUERY_URL = {js(query_url)};
  var UID = {js(uid)};
  var WAVES = {js(CHUNK_WAVES)};
  var DRAW_MS = __DRAW_MS__;
  window.panelsRendered = 0;
  function running(delta) {{
    window.__grafanaRunningQueryCount = (window.__grafanaRunningQueryCount || 0) + delta;
  }}
  function get(url) {{
    return fetch(url, {{ credentials: 'same-origin', headers: {{ 'Accept': 'application/json' }} }})
      .then(function (r) {{ if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); }});
  }}
  function chunk(name) {{
    return new Promise(function (resolve) {{
      var s = document.createElement('script');
      s.src = '/public/build/' + name;
      s.onload = s.onerror = function () {{ resolve(); }};
      document.head.appendChild(s);
    }});
  }}
  function wave(i) {{ return Promise.all(WAVES[i].map(chunk)); }}
  // Boot: the route's chunks and the user, then the dashboard and the
  // scene's chunks, then the scene runs annotations and a variable, loads
  // the panel plugin, and runs the panel's query.
  Promise.all([wave(0), get('/api/user')])
    .then(function () {{ return Promise.all([wave(1), get('/api/dashboards/uid/' + UID)]); }})
    .then(function () {{
      window.__grafanaSceneContext = {{}};
      running(1);
      return Promise.all([get('/api/annotations?dashboardUID=' + UID), get('/api/variables/query')]);
    }})
    .then(function () {{ running(-1); return wave(2); }})
    .then(function () {{ running(1); return get(QUERY_URL); }})
    .then(function (data) {{
      return new Promise(function (r) {{ setTimeout(function () {{ r(data); }}, DRAW_MS); }});
    }})
    .then(function (data) {{
      var bar = document.querySelector('.panel-loading');
      if (bar) bar.parentNode.removeChild(bar);
      fgPaint(document.getElementById('panel-canvas'), function (ctx, W, H) {{
        ctx.fillStyle = data.color;
        ctx.fillRect(0, Math.floor(H / 3), W, H - Math.floor(H / 3));
      }});
    }})
    .catch(function (e) {{ window.__fakeGrafanaError = String(e); }})
    .then(function () {{
      // As React does after a panel renders: the flag, then a DOM commit
      // (which is what a mutation-polling waiter looks again on).
      fgAfterPaint(function () {{
        window.panelsRendered = 1;
        running(-1);
        document.body.setAttribute('data-panel-rendered', '1');
      }});
    }});
}})();
</script>
</body></html>
"""


def static_asset(name):
    """A small static asset of the kind its name says."""
    if name.endswith(".js"):
        return "application/javascript", "window.__fgChunks = (window.__fgChunks || 0) + 1;\n" + "//" + "x" * 2048
    if name.endswith(".css"):
        fonts = "".join(
            f"@font-face{{font-family:fg{i};src:url(/public/build/{f}) format('woff2')}}"
            f".fg{i}{{font-family:fg{i}}}"
            for i, f in enumerate(FONTS)
        )
        images = "".join(
            f".im{i}{{background:url(/public/build/{f})}}" for i, f in enumerate(IMAGES)
        )
        # The fonts and images are used, so the browser fetches them.
        return "text/css", fonts + images
    if name.endswith(".woff2"):
        return "font/woff2", b"wOF2" + b"\0" * 1024
    if name.endswith(".svg"):
        return "image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    return None, None


def leak_page(target):
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<script>window.__grafanaSceneContext = {{}}; window.__grafanaRunningQueryCount = 1;</script>
<title>Grafana</title>
<style>{BASE_CSS}img{{position:absolute;top:0;left:0;width:1px;height:1px}}</style>
</head><body>
<canvas id="panel-canvas"></canvas>
<script>
(function () {{
{JS_HELPERS}
  var TO = {js(target)};
  window.__leakResult = {{}};
  var viaFetch = new Promise(function (resolve) {{
    try {{
      fetch(TO, {{ mode: 'no-cors', cache: 'no-store' }}).then(
        function () {{ window.__leakResult.fetch = 'ok'; resolve(); }},
        function () {{ window.__leakResult.fetch = 'error'; resolve(); }});
    }} catch (e) {{ window.__leakResult.fetch = 'error'; resolve(); }}
  }});
  var viaImg = new Promise(function (resolve) {{
    var img = document.createElement('img');
    img.onload = function () {{ window.__leakResult.img = 'load'; resolve(); }};
    img.onerror = function () {{ window.__leakResult.img = 'error'; resolve(); }};
    img.src = TO;
    document.body.appendChild(img);
  }});
  var cap = new Promise(function (resolve) {{
    setTimeout(function () {{ window.__leakResult.timedOut = true; resolve(); }}, 10000);
  }});
  Promise.race([Promise.all([viaFetch, viaImg]), cap]).then(function () {{
    fgPaint(document.getElementById('panel-canvas'), function (ctx, W, H) {{
      ctx.fillStyle = {js(PANEL_COLOR)};
      ctx.fillRect(0, 0, W, H);
    }});
    fgAfterPaint(function () {{ window.__grafanaRunningQueryCount = 0; }});
  }});
}})();
</script>
</body></html>
"""


def plain_page():
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Chart</title>
<style>{BASE_CSS}</style>
</head><body>
<canvas id="chart"></canvas>
<script>
(function () {{
{JS_HELPERS}
  fgPaint(document.getElementById('chart'), function (ctx, W, H) {{
    ctx.fillStyle = {js(PLAIN_COLOR)};
    ctx.fillRect(0, 0, W, H);
  }});
}})();
</script>
</body></html>
"""


class RequestLog:
    """Appends one JSON line per request, flushed immediately."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8") if path else None

    def write(self, record):
        if self._fh is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self._fh.write(line)
                self._fh.flush()
            except (OSError, ValueError):
                pass


class FakeGrafanaServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, addr, handler, *, ssl_context, config, request_log):
        self.ssl_context = ssl_context
        self.config = config
        self.request_log = request_log
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake happens here, in the per-connection thread, so a
        # client that connects and never handshakes cannot block accept().
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(15)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(None)
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Client hang-ups and TLS noise are expected; stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        if self.config.verbose:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections

    # ---- plumbing -------------------------------------------------------

    def version_string(self):
        return "Grafana"

    def log_message(self, fmt, *args):
        if self.server.config.verbose:
            sys.stderr.write("fake_grafana: %s %s\n" % (self.address_string(), fmt % args))

    def log_error(self, fmt, *args):
        if self.server.config.verbose:
            self.log_message(fmt, *args)

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_OPTIONS(self):
        self._dispatch()

    def __getattr__(self, name):
        # Any other method (do_FOO) is logged and answered 404 as well,
        # instead of http.server's unlogged 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _drain_body(self):
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        if length <= 0:
            return b""
        if length > MAX_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _send(self, status, body, content_type, extra_headers=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra_headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status, obj, extra_headers=()):
        self._send(status, json.dumps(obj), "application/json", extra_headers)

    def _html(self, html):
        self._send(200, html, "text/html; charset=utf-8")

    def _authorized(self):
        value = self.headers.get("Authorization")
        if not value:
            return False
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"),
            self.server.config.token.encode("utf-8"),
        )

    def _unauthorized(self):
        self._json(401, {"message": "Unauthorized"})

    def _dispatch(self):
        try:
            parts = urlsplit(self.path)
            path = parts.path or "/"
            raw_query = parts.query
            self.server.request_log.write(
                {
                    "method": self.command,
                    "path": path,
                    "query": raw_query,
                    "authorization": self.headers.get("Authorization"),
                    "host": self.headers.get("Host"),
                }
            )
            self._drain_body()
            query = parse_qs(raw_query, keep_blank_values=True)
            self._route(path, query)
        except (ConnectionError, ssl.SSLError, TimeoutError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # never crash on odd input
            self.close_connection = True
            if self.server.config.verbose:
                sys.stderr.write(f"fake_grafana: error handling {self.path!r}: {exc!r}\n")
            try:
                self._json(500, {"message": "Internal Server Error"})
            except Exception:
                pass

    # ---- routes ---------------------------------------------------------

    def _route(self, path, query):
        cfg = self.server.config
        method = self.command
        get_like = method in ("GET", "HEAD")
        segments = path.split("/")  # leading "" from the first "/"

        if get_like and path == "/api/health":
            return self._json(200, {"database": "ok"})

        if get_like and path == "/plain":
            return self._html(plain_page())

        # /d-solo/<uid> or /d-solo/<uid>/<slug> (optional trailing slash)
        if (
            get_like
            and len(segments) >= 3
            and segments[1] == "d-solo"
            and segments[2]
            and (len(segments) <= 4 or (len(segments) == 5 and segments[4] == ""))
        ):
            if not self._authorized():
                return self._unauthorized()
            org_values = query.get("orgId")
            if org_values is not None and any(v != str(cfg.org) for v in org_values):
                return self._json(403, {"message": "Access denied to org"})
            panel_id = (query.get("panelId") or [""])[0]
            query_url = "/api/ds/query?" + urlencode({"panelId": panel_id})
            if cfg.mode == "staged":
                return self._html(staged_page(query_url))
            if cfg.mode == "realistic":
                page = realistic_page(segments[2], query_url)
                return self._html(page.replace("__DRAW_MS__", str(cfg.draw_ms)))
            return self._html(dsolo_page(cfg.mode, query_url))

        if get_like and path.startswith("/public/build/"):
            kind, body = static_asset(path.rsplit("/", 1)[-1])
            if kind is None:
                return self._json(404, {"message": "Not found"})
            time.sleep(cfg.asset_ms / 1000.0)
            return self._send(200, body, kind)

        if get_like and path in ("/api/user", "/api/annotations", "/api/variables/query") or (
            get_like and path.startswith("/api/dashboards/uid/")
        ):
            if not self._authorized():
                return self._unauthorized()
            return self._json(200, {"id": 1, "ok": True})

        if get_like and path.startswith("/public/plugins/") and path.endswith(".js"):
            time.sleep(cfg.plugin_ms / 1000.0)
            return self._send(
                200, "window.__fgPlugin = true;", "application/javascript"
            )

        if path == "/api/ds/query" and method in ("GET", "HEAD", "POST"):
            if not self._authorized():
                return self._unauthorized()
            if "variable" in query:
                return self._json(200, {"values": ["a", "b"]})
            if cfg.delay_ms > 0:
                time.sleep(cfg.delay_ms / 1000.0)
            return self._json(
                200,
                {
                    "series": SERIES,
                    "color": PANEL_COLOR,
                    "panelId": (query.get("panelId") or [""])[0],
                },
            )

        if get_like and path == "/api/org":
            if not self._authorized():
                return self._unauthorized()
            org_header = self.headers.get("X-Grafana-Org-Id")
            if org_header is not None and org_header.strip() != str(cfg.org):
                return self._json(403, {"message": "Access denied to org"})
            return self._json(200, {"id": cfg.org, "name": "Main Org."})

        if get_like and path == "/redirect":
            if not self._authorized():
                return self._unauthorized()
            target = (query.get("to") or [""])[0]
            if not target or "\r" in target or "\n" in target:
                return self._json(400, {"message": "missing or invalid 'to'"})
            return self._send(
                302, "", "text/plain; charset=utf-8", [("Location", target)]
            )

        if get_like and path == "/leak":
            if not self._authorized():
                return self._unauthorized()
            target = (query.get("to") or [""])[0]
            if not target:
                return self._json(400, {"message": "missing 'to'"})
            return self._html(leak_page(target))

        return self._json(404, {"message": "Not found"})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Fake Grafana for fanout's tests")
    p.add_argument("--cert", help="PEM certificate (HTTPS)")
    p.add_argument("--key", help="PEM private key (HTTPS)")
    p.add_argument("--plain", action="store_true", help="serve plain HTTP")
    p.add_argument("--token", required=True, help="required bearer token")
    p.add_argument("--org", type=int, default=1, help="the only valid orgId")
    p.add_argument("--delay-ms", type=int, default=400, help="data delay in ms")
    p.add_argument(
        "--mode", choices=("scenes", "legacy", "staged", "realistic"), default="scenes"
    )
    p.add_argument("--asset-ms", type=int, default=5, help="static asset delay in ms")
    p.add_argument("--draw-ms", type=int, default=300, help="realistic: draw after the data, ms")
    p.add_argument("--plugin-ms", type=int, default=300, help="plugin chunk delay in ms")
    p.add_argument("--log", help="append one JSON line per request here")
    p.add_argument("--verbose", action="store_true", help="access log on stderr")
    args = p.parse_args(argv)
    if not args.plain and not (args.cert and args.key):
        p.error("--cert and --key are required unless --plain is given")
    if args.delay_ms < 0:
        p.error("--delay-ms must be >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)

    ctx = None
    if not args.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)

    server = FakeGrafanaServer(
        ("127.0.0.1", 0),
        Handler,
        ssl_context=ctx,
        config=args,
        request_log=RequestLog(args.log),
    )
    port = server.server_address[1]

    def stop():
        # shutdown() blocks until serve_forever() returns, so never call it on
        # the serving thread itself.
        threading.Thread(target=server.shutdown, daemon=True).start()

    def on_signal(signum, frame):
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # Raw os.read, not sys.stdin: a daemon thread parked inside the
        # buffered reader holds its lock and aborts interpreter shutdown.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop()

    threading.Thread(target=watch_stdin, daemon=True).start()

    try:
        print(f"READY {port}", flush=True)
    except OSError:
        pass
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        try:
            server.server_close()
        except OSError:
            pass
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        # Handler threads may still be sleeping or writing the log; skip
        # interpreter finalisation so daemon threads cannot trip it up.
        os._exit(0)


if __name__ == "__main__":
    main()
