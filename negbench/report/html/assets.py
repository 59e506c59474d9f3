"""The page's one stylesheet and script, and the Content-Security-Policy that admits exactly them."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["SCRIPT", "STYLE", "content_security_policy", "csp_hash"]

STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--alt:#f6f8fa;--acc:#0969da;--good:#1a7f37;
--bad:#cf222e}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;padding:1.5rem;max-width:1280px}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.muted,.note{color:var(--muted)}.note{font-size:.9em}
nav ul{padding-left:1.2rem;margin:.3rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:.3rem .55rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text,th.text{text-align:left}
thead th{background:var(--alt);white-space:nowrap}
tbody tr:nth-child(even){background:var(--alt)}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th button::after{content:" \\2195";color:var(--muted);font-weight:400}
th[aria-sort=ascending] button::after{content:" \\25B2";color:var(--acc)}
th[aria-sort=descending] button::after{content:" \\25BC";color:var(--acc)}
.ci{color:var(--muted);font-size:.9em}
.sig{font-weight:700}.sig.better{color:var(--good)}.sig.worse{color:var(--bad)}
.tag{font-size:.8em;color:var(--muted);border:1px solid var(--line);border-radius:3px;padding:0 .25rem}
.failed{color:var(--bad)}
.plots{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{margin:0}figcaption{color:var(--muted);font-size:.85em;max-width:480px}
img.plot{max-width:100%;height:auto;display:block;background:var(--bg)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem}
.card table{width:100%;font-size:.92em}.card thead th{white-space:normal}
.card{border:1px solid var(--line);border-radius:6px;padding:.2rem .9rem .6rem}.card h3{margin-top:.6rem}
pre{background:var(--alt);padding:.5rem;overflow:auto;white-space:pre-wrap;max-width:100%}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
code{font-size:.92em}
.scroll{overflow-x:auto;max-width:100%}
td:not(.text){white-space:nowrap}
.verdict{background:var(--alt);border-left:4px solid var(--acc);padding:.1rem .9rem;margin:.8rem 0}
h3.view{margin-top:1.4rem}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (numeric) {
      var v = parseFloat(raw);
      return isNaN(v) ? null : v;
    }
    return raw.trim().toLowerCase();
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var dir = current === "descending" ? "ascending" :
      (current === "ascending" ? "descending" : (numeric ? "descending" : "ascending"));
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, th, col); }); }
    });
  });
})();
"""


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-…'``) that allows an inline block with exactly ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(script: str = SCRIPT, style: str = STYLE) -> str:
    """No network at all; only the page's own script and style block (by hash); images only as data URIs."""
    return (
        f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
