"""Executed notebook -> the HTML report page (nbconvert's lab template, no CDN scripts).

:func:`html_exporter` gives nbconvert's ``HTMLExporter`` with the report template, one per
thread and setting, reused for every report of a batch (a new exporter loads and compiles its
Jinja templates again, about 0.1 s per report).

The accessibility pass without re-parsing the page
--------------------------------------------------
After rendering, nbconvert 7's ``HTMLExporter.from_notebook_node`` parses the whole page with
BeautifulSoup to add ``alt`` text to images without one and ``tabindex="0"`` to the input and
output areas of the notebook (``.jp-Notebook div.jp-Cell-inputWrapper``, ``.jp-Notebook
div.jp-OutputArea-output``), and serializes the page again: about 0.07 s of the 0.13 s an event
report's export takes, because the page holds every table cell of the report. The exporter here
renders the same template with the same filters and resources and adds those attributes to the
rendered tags directly (:func:`accessible`): the page parses to the same document tree as
nbconvert's (``tests/test_html_export.py`` compares the BeautifulSoup trees of both for
notebooks with tables, figures, markdown images, streams, errors, hidden and shown code).
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

__all__ = ["MISSING_ALT", "accessible", "html_exporter"]

#: nbconvert's alt text for an image that has none
MISSING_ALT = "No description has been provided for this image"

#: nbconvert's lab template without the scripts it loads from a CDN: require.js (for widgets,
#: which the reports have none of) and MathJax (the notebooks use no LaTeX, and it would read
#: two "US$" in one cell as math); a report then opens offline with no failed request
REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""

#: one token: a whole <style> / <script> element (left alone) or an <img> / <div> start tag
_TOKEN = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>|<(img|div|body|main)\b([^>]*)>",
                    re.IGNORECASE | re.DOTALL)
_CLASS = re.compile(r"""\bclass\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_ALT = re.compile(r"(?:^|\s)alt\s*=", re.IGNORECASE)
_TABINDEX = re.compile(r"""\s+tabindex\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_FOCUSABLE = frozenset({"jp-Cell-inputWrapper", "jp-OutputArea-output"})


def accessible(html: str) -> str:
    """Add nbconvert's accessibility attributes to the rendered report page.

    ``alt="No description has been provided for this image"`` on every ``<img>`` without an
    ``alt`` attribute, and, after the start tag of the element whose classes include
    ``jp-Notebook`` (the lab template's ``<body>``), ``tabindex="0"`` on every ``<div>`` whose
    classes include ``jp-Cell-inputWrapper`` or ``jp-OutputArea-output`` (replacing a
    ``tabindex`` it had, as nbconvert does). Text inside ``<style>`` / ``<script>`` elements is
    left alone.
    """
    out: list[str] = []
    pos, in_notebook = 0, False
    for match in _TOKEN.finditer(html):
        tag = match.group(2)
        if tag is None:  # a style or script element
            continue
        tag, attrs = tag.lower(), match.group(3)
        closing = "/" if attrs.rstrip().endswith("/") else ""
        body = attrs.rstrip()[:-1] if closing else attrs
        if tag == "img":
            if _ALT.search(body):
                continue
            new = f'<img{body.rstrip()} alt="{MISSING_ALT}"{closing}>'
        elif not in_notebook:
            in_notebook = "jp-Notebook" in _classes(body)
            continue
        elif tag == "div" and _FOCUSABLE & _classes(body):
            new = f'<div{_TABINDEX.sub("", body).rstrip()} tabindex="0"{closing}>'
        else:
            continue
        out.append(html[pos:match.start()])
        out.append(new)
        pos = match.end()
    out.append(html[pos:])
    return "".join(out)


def _classes(attrs: str) -> set[str]:
    found = _CLASS.search(attrs)
    if found is None:
        return set()
    return set((found.group(1) if found.group(1) is not None else found.group(2)).split())


def html_exporter(exclude_input: bool) -> Any:
    """The report page exporter; ``exclude_input`` hides the code cells and the In/Out prompts
    (a report for readers: markdown, tables, figures and error tracebacks stay).

    One exporter per thread and setting (see the module docstring).
    """
    return _cached_exporter(exclude_input, threading.get_ident())


@functools.cache
def _cached_exporter(exclude_input: bool, thread: int) -> Any:
    from jinja2 import DictLoader

    return _exporter_class()(
        template_name="lab", template_file="crackdown_report.html.j2",
        extra_loaders=[DictLoader({"crackdown_report.html.j2": REPORT_TEMPLATE})],
        exclude_input=exclude_input, exclude_input_prompt=exclude_input,
        exclude_output_prompt=exclude_input)


@functools.cache
def _exporter_class() -> type:
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class ReportHTMLExporter(HTMLExporter):
        """``HTMLExporter`` whose accessibility pass is :func:`accessible`."""

        def from_notebook_node(self, nb: Any, resources: dict | None = None,
                               **kw: Any) -> tuple[str, dict]:
            # HTMLExporter.from_notebook_node (nbconvert 7) up to the template's render
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources)
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            return accessible(html), resources

    return ReportHTMLExporter
