"""A self-contained static HTML leaderboard (``index.html``) and ``negbench report``.

The page needs nothing from the network: styles and the sorting script are inline, figures are matplotlib
SVG embedded as ``data:`` images (:mod:`negbench.report.plots`: style-free SVG, so it needs no CSS allowance), so
it works from ``file://`` and any static host. It carries a strict Content-Security-Policy
(``default-src 'none'``) whose ``script-src`` / ``style-src`` allow exactly the page's one script and one
style block by their SHA-256 hashes, and ``img-src data:`` for the figures; there are no inline event
handlers or ``style`` attributes. Every string that comes from a results store goes through :func:`html.escape`.
"""

from negbench.report.html.assets import SCRIPT, STYLE, content_security_policy, csp_hash
from negbench.report.html.cells import strategy_citation
from negbench.report.html.page import render_html

__all__ = ["SCRIPT", "STYLE", "content_security_policy", "csp_hash", "render_html", "strategy_citation"]
