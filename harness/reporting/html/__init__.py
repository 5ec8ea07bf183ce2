"""The HTML reports: one self-contained page per model (``reports/<model>/report.html``) and one for the
matrix (``reports/MATRIX.html``), rendered with Jinja2 from the same dicts ``results.json`` and
``matrix.json`` hold; stylesheet and script inline, figures embedded as ``data:`` URIs, no network.

    python -m harness.reporting.html reports/ [--screenshots]

- ``encoding``: numbers and intervals as text (±∞), element ids, strict JSON for scripts, data URIs;
- ``claim_figures``: which figure a claim's rows are read from;
- ``render``: the Jinja2 environment and ``templates/`` (``*.html.j2``, ``style.css``, ``page.js``);
- ``model_page``: a model's page (``write_model_page``);
- ``matrix_page``: the matrix page (``write_matrix_page``);
- ``browser``: headless Chromium through Selenium (screenshots; the browser test);
- ``cli``: the command line (``main``; ``__main__`` runs it).
"""

from harness.reporting.html.matrix_page import write_matrix_page
from harness.reporting.html.model_page import write_model_page

__all__ = ["write_matrix_page", "write_model_page"]
