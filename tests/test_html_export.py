"""The report page (crackdown.output.html_export): the same document as nbconvert's
``HTMLExporter`` with the report template, without its BeautifulSoup round trip.

The pages of both are parsed with BeautifulSoup and compared as trees (tag names, attributes,
text, in order): nbconvert's adds ``alt`` to images without one and ``tabindex="0"`` to the
notebook's input and output areas, and ours must add exactly those.
"""

from __future__ import annotations

import base64
import io

import matplotlib
import nbformat
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from crackdown.output import html_export

matplotlib.use("Agg")


def _png() -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=20)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _notebook() -> nbformat.NotebookNode:
    """Every kind of cell and output a report holds, plus HTML a user might put in them."""
    new = nbformat.v4
    nb = new.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    table = pd.DataFrame({"ticker": ["BABA", "9988.HK"], "car": [-0.0812, 0.0123],
                          "note": ["a < b & c", "x"]})
    nb.cells = [
        new.new_markdown_cell("# Event study\n\nText with `code`, **bold** and a link "
                              "[events](events.csv).\n\n<img src='x.png'>\n\n"
                              "<img src='y.png' alt='a described image'>"),
        new.new_code_cell("print('hello')", execution_count=1, outputs=[
            new.new_output("stream", name="stdout", text="hello\n"),
            new.new_output("stream", name="stderr", text="a warning\n")]),
        new.new_code_cell("table", execution_count=2, outputs=[new.new_output(
            "execute_result", {"text/html": table.to_html(), "text/plain": str(table)},
            execution_count=2)]),
        new.new_code_cell("plt.show()", execution_count=3, outputs=[new.new_output(
            "display_data", {"image/png": _png(), "text/plain": "<Figure size 100x100>"})]),
        new.new_code_cell("display(HTML(...))", execution_count=4, outputs=[new.new_output(
            "display_data", {"text/html": "<style>.x { color: red; }</style>"
                             "<div class='jp-OutputArea-output' tabindex='5'>inner</div>"
                             "<script>var s = '<div class=\"jp-OutputArea-output\">';</script>"
                             "<img src='z.png'/>"})]),
        new.new_code_cell("display(Markdown('**x**'))", execution_count=5, outputs=[
            new.new_output("display_data", {"text/markdown": "**x** < y"})]),
        new.new_code_cell("1/0", execution_count=6, outputs=[new.new_output(
            "error", ename="ZeroDivisionError", evalue="division by zero",
            traceback=["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"])]),
        new.new_raw_cell("raw <b>text</b>"),
    ]
    return nb


def _stock_exporter(exclude_input: bool):
    """nbconvert's own HTMLExporter, configured as the report exporter."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab", template_file="crackdown_report.html.j2",
        extra_loaders=[DictLoader({"crackdown_report.html.j2": html_export.REPORT_TEMPLATE})],
        exclude_input=exclude_input, exclude_input_prompt=exclude_input,
        exclude_output_prompt=exclude_input)


@pytest.mark.parametrize("exclude_input", [True, False], ids=["code hidden", "code shown"])
def test_the_page_is_the_document_nbconvert_makes(exclude_input):
    nb = _notebook()
    ours, resources = html_export.html_exporter(exclude_input).from_notebook_node(nb)
    theirs, their_resources = _stock_exporter(exclude_input).from_notebook_node(nb)
    assert BeautifulSoup(ours, "html.parser") == BeautifulSoup(theirs, "html.parser")
    assert resources["output_extension"] == their_resources["output_extension"] == ".html"
    # the attributes were added where nbconvert adds them (so the comparison is not vacuous)
    soup = BeautifulSoup(ours, "html.parser")
    alts = [img.get("alt") for img in soup.find_all("img")]
    assert alts.count(html_export.MISSING_ALT) == 3 and "a described image" in alts
    focusable = soup.select(".jp-Notebook div.jp-OutputArea-output")
    assert len(focusable) >= 6 and all(d["tabindex"] == "0" for d in focusable)
    inputs = soup.select(".jp-Notebook div.jp-Cell-inputWrapper")
    # the markdown cell is an input area too; code cells only when the code is shown
    assert all(d["tabindex"] == "0" for d in inputs)
    assert len(inputs) == (1 if exclude_input else 7)  # the markdown cell (+ 6 code cells)
    # the script's text is untouched
    assert "var s = '<div class=\"jp-OutputArea-output\">';" in ours


def test_accessible_on_hand_made_pages():
    head = '<html><head><style>div.jp-OutputArea-output { }</style></head>'
    page = (head + '<body class="a jp-Notebook"><main><div class="jp-OutputArea-output x" '
            'tabindex="3">t</div><div class="other">u</div><img src="a"><img alt="" src="b">'
            '<IMG SRC="c"/></main></body></html>')
    out = html_export.accessible(page)
    assert out == (head + '<body class="a jp-Notebook"><main><div class="jp-OutputArea-output '
                   'x" tabindex="0">t</div><div class="other">u</div><img src="a" alt="'
                   f'{html_export.MISSING_ALT}"><img alt="" src="b"><img SRC="c" alt="'
                   f'{html_export.MISSING_ALT}"/></main></body></html>')
    before = '<div class="jp-OutputArea-output">outside the notebook</div>'
    assert html_export.accessible(before) == before
