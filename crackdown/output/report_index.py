"""``OUTPUT/index.html`` of ``crackdown report``: one table per notebook, every report folder.

Every report folder is listed, none silently left out: ``OUTPUT/<notebook>/<event>/`` of a
per-event notebook, ``OUTPUT/<notebook>/`` of a run-once notebook (and the earlier layout
``OUTPUT/<notebook>/<notebook>/`` until that notebook is rerun):

* with a valid ``status.json`` (written last, atomically, by the runner): its status (``ok`` /
  ``failed`` with the one-line error), event metadata, headline numbers and figure thumbnails;
* without one, or with an unreadable one, or with ``ok`` but its HTML missing: **incomplete**,
  with the reason (e.g. a folder half-written by an older crackdown or edited by hand);
* a hidden ``.<label>.partial-<pid>-*`` folder whose process is gone (a run killed with
  ``kill -9``): **incomplete**, "left by an interrupted run"; the next run of that report
  removes it. Folders of a batch still running are not listed.

The index is written atomically (:func:`crackdown.output.report_io.atomic_write`).

Layout (made to fit a 1366-px laptop screen, checked in headless Chromium by
``tests/test_reports_browser.py``):

* a notebook with several reports gets one table, one row per report, **sortable** by any
  column (a click on its header; a small inline script, no external file or CDN); the event
  title, category and direction are shown under the report's link; headline texts equal in
  every row (window, model, headline test) are stated once above the table; a ``<name> low``
  / ``<name> high`` pair of keys shares one ``[low, high]`` column; text cells wrap (ids
  after ``_``), a failed report's error is cut at a word boundary (whole in the tooltip and in
  the list at the top);
* a notebook with one report (a run-once notebook such as the overview) gets a two-column
  table, one line per headline value, so any number of values fits;
* **numbers** (:func:`column_formatter`): one format per column (per value of a two-column
  table): integers with thousands separators; p-values (a key with the word ``p``) with 3
  decimals and in scientific notation below 0.001 (never ``0.000``); percentages (a key with
  ``%``) with 2 decimals, other numbers with 3; one decimal fewer per digit beyond three before
  the point of the column's largest value, and more decimals (at most 6) for a column of small
  numbers until its largest value shows 2 significant digits; missing values ``n/a``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crackdown.errors import StudyConfigError
from crackdown.output import report_io

__all__ = [
    "INDEX_FILE",
    "STATUS_FILE",
    "check_run_once_folder",
    "column_formatter",
    "report_folder",
    "write_index",
]

INDEX_FILE = "index.html"
STATUS_FILE = "status.json"
#: files only a report run writes: a folder holding one of them is a report folder
_REPORT_MARKERS = ("kernel.log", "headline.json", report_io.KERNEL_PID_FILE)


def report_folder(output_root: str | os.PathLike[str], notebook: str, label: str, *,
                  per_event: bool) -> Path:
    """The folder of one report: ``<output_root>/<notebook>/<label>`` for a per-event notebook,
    ``<output_root>/<label>`` for a run-once notebook (``label`` = its name, so the folder name
    does not repeat as in ``reports/crackdown_overview/crackdown_overview/``)."""
    root = Path(output_root)
    return root / notebook / label if per_event else root / label


def check_run_once_folder(folder: Path) -> None:
    """Refuse (:class:`~crackdown.errors.StudyConfigError`) to replace ``folder`` by a run-once
    report when it holds per-event reports (of a notebook of that name that once had an
    ``event_id`` parameter); that report, or its earlier layout ``<notebook>/<notebook>/``,
    may be replaced."""
    if not folder.is_dir() or (folder / STATUS_FILE).exists():
        return
    others = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != folder.name
                    and not p.name.startswith(".") and (p / STATUS_FILE).exists())
    if others:
        raise StudyConfigError(
            f"{folder} holds per-event reports ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) of an earlier version of notebook "
            f"{folder.name}, where its run-once report goes; move that folder away or choose "
            "another --output")


def _incomplete(notebook: str, label: str, reason: str) -> dict[str, Any]:
    return {"notebook": notebook, "label": label, "status": "incomplete", "error": reason}


def _read_status(folder: Path, notebook: str | None = None) -> dict[str, Any] | None:
    """The report row of ``folder`` (an incomplete row when its status is missing or invalid),
    or None when ``folder`` is not a report folder. ``notebook`` defaults to the parent's name
    (per-event layout); a run-once report folder is named after its notebook."""
    notebook, label = notebook or folder.parent.name, folder.name
    path = folder / STATUS_FILE
    if not path.exists():
        names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        if f"{label}.ipynb" in names or any(m in names for m in _REPORT_MARKERS):
            return _incomplete(notebook, label, f"{path.name} missing: the run did not finish; "
                               "rerun this report")
        return None
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _incomplete(notebook, label, f"{path.name} unreadable ({type(exc).__name__}); "
                           "rerun this report")
    fields_ok = (isinstance(status, dict) and status.get("status") in ("ok", "failed")
                 and isinstance(status.get("html", ""), str)
                 and isinstance(status.get("figures", []), list)
                 and all(isinstance(f, str) for f in status.get("figures", []))
                 and isinstance(status.get("headline", {}), dict)
                 and isinstance(status.get("meta", {}) or {}, dict))
    if not fields_ok:
        return _incomplete(notebook, label, f"{path.name} is not a report status; rerun this "
                           "report")
    status = dict(status, notebook=str(status.get("notebook") or notebook),
                  label=str(status.get("label") or label))
    missing = [name for name in [status.get("html") or "", *status.get("figures", [])]
               if name and not (folder / name).is_file()]
    if missing:
        return _incomplete(status["notebook"], status["label"],
                           f"file(s) missing: {', '.join(missing)}; rerun this report")
    return status


def _load_statuses(root: Path) -> dict[str, list[dict[str, Any]]]:
    sections: dict[str, list[dict[str, Any]]] = {}
    parents = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for parent in parents:
        row = _read_status(parent, notebook=parent.name)  # a run-once report: OUTPUT/<notebook>/
        if row is not None:
            row["_folder"] = parent.name
            sections.setdefault(row["notebook"], []).append(row)
            continue
        for folder in sorted(p for p in parent.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            row = _read_status(folder)
            if row is not None:
                row["_folder"] = folder.relative_to(root).as_posix()
                sections.setdefault(row["notebook"], []).append(row)
        for folder, label, pid in report_io.stale_folders(parent):
            row = _incomplete(parent.name, label, f"left by an interrupted run (process {pid}) "
                              f"in {folder.name}; rerun this report or delete that folder")
            row["_folder"] = None
            sections.setdefault(parent.name, []).append(row)
    for folder, label, pid in report_io.stale_folders(root):  # of run-once notebooks
        row = _incomplete(label, label, f"left by an interrupted run (process {pid}) in "
                          f"{folder.name}; rerun this report or delete that folder")
        row["_folder"] = None
        sections.setdefault(label, []).append(row)
    for rows in sections.values():
        rows.sort(key=lambda r: (str((r.get("meta") or {}).get("date", "")),
                                 str(r.get("label", ""))))
    return sections


# --------------------------------------------------------------------------------------------
# Number formats: one per column
# --------------------------------------------------------------------------------------------

_P_KEY = re.compile(r"(?:^|[\s(_\-])p(?:$|[\s)_\-])|p[-_ ]?value", re.IGNORECASE)
_PP_KEY = re.compile(r"\bpp\b")  # percentage points
_LOW_KEY = re.compile(r"^(?P<pre>.*?)\blow\b(?P<post>.*)$", re.IGNORECASE)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return str(value)


def column_formatter(key: str, values: Sequence[Any]) -> Callable[[Any], str]:
    """The formatter of one index column (or one line of a two-column table).

    One format for every number of the column, chosen from its key and its values:

    * every number an integer (``int``, also under a key naming a p-value, such as
      ``clusters with p < 5%``): thousands separators, ``12,345``;
    * a p-value (``key`` contains the word ``p``, e.g. ``headline p``, ``KP p``,
      ``paired t p``, or ``p-value``): 3 decimals, and ``1.2e-05`` (2 significant digits)
      below 0.001, so a p-value never prints as ``0.000``;
    * otherwise ``d`` decimals, ``d`` = 2 for a percentage (``%`` or ``pp``, percentage
      points, in ``key``) and 3 for other numbers, minus one per digit beyond three before the
      point of ``m`` = the largest absolute value (``m`` = 12345.6 in percent: 0 decimals),
      plus one while ``m < 10**(1 - d)`` (at most 6; ``m`` = 0.0004: 5 decimals,
      ``0.00040``), so the largest value shows at least 2 significant digits.

    ``None``, NaN and infinities print as ``n/a``; booleans as ``yes``/``no``; strings as they are.
    """
    numbers = [abs(float(v)) for v in values if _is_number(v) and math.isfinite(float(v))]
    if all(isinstance(v, int) for v in values if _is_number(v)):  # counts, also "with p < 5%"
        return lambda value: f"{value:,}" if _is_number(value) else _plain(value)
    if _P_KEY.search(key):
        def fmt_p(value: Any) -> str:
            if not _is_number(value) or not math.isfinite(float(value)):
                return _plain(value)
            return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:.3f}"
        return fmt_p
    decimals = 2 if "%" in key or _PP_KEY.search(key) else 3
    largest = max(numbers, default=0.0)
    if largest >= 1000:
        decimals = max(0, decimals - (math.floor(math.log10(largest)) - 2))
    while 0 < largest < 10.0 ** (1 - decimals) and decimals < 6:
        decimals += 1

    def fmt(value: Any) -> str:
        if not _is_number(value) or not math.isfinite(float(value)):
            return _plain(value)
        text = f"{value:,.{decimals}f}"
        return "0" if decimals == 0 and text == "-0" else text
    return fmt


def _cell(value: Any, fmt: Callable[[Any], str]) -> str:
    """A ``<td>``; numbers right-aligned, with their raw value in ``data-v`` for sorting."""
    if _is_number(value) and math.isfinite(float(value)):
        return f"<td class='num' data-v='{float(value)!r}'>{html.escape(fmt(value))}</td>"
    return f"<td class='text'>{_breakable(fmt(value))}</td>"


# --------------------------------------------------------------------------------------------
# Page
# --------------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2em;color:#222;
max-width:100%}
h1{font-size:1.5em}h2{font-size:1.2em;margin:1.8em 0 .4em}
p.note,p.common{font-size:.88em;color:#444;margin:.3em 0 .6em;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:.82em;max-width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .35em;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600;overflow-wrap:normal}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#e6e6e6}table.sortable th.nosort{cursor:auto}
table.sortable th:not(.nosort)::after{content:"\\00a0\\2195";color:#999;font-weight:400}
table.sortable th[aria-sort=ascending]::after{content:"\\00a0\\25B2";color:#222}
table.sortable th[aria-sort=descending]::after{content:"\\00a0\\25BC";color:#222}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.report,td.status{overflow-wrap:break-word}td.text{overflow-wrap:anywhere}
td.text{max-width:16em}td.date{white-space:nowrap}
td.report{min-width:11em;max-width:20em}td.report div.title{font-size:.92em;color:#444}
td.status{min-width:6.5em;max-width:14em}td.status span{white-space:nowrap}
tr.failed td{background:#fdecea}tr.incomplete td{background:#fff4e5}
.status-ok{color:#1a7f37}.status-failed{color:#b42318;font-weight:600}
.status-incomplete{color:#b54708;font-weight:600}
td.figures{min-width:4.5em;max-width:24em}
img.thumb{height:40px;max-width:100%;border:1px solid #ccc;margin:0 3px 3px 0;
vertical-align:top}
table.kv th{text-align:left;font-weight:400;background:#f7f7f7;max-width:28em;
overflow-wrap:anywhere}
table.kv td.text{max-width:40em}table.kv td.num{text-align:left}table.kv td.figures{max-width:60em}
.error{font-family:monospace;font-size:.85em;color:#b42318;overflow-wrap:anywhere}
ul{overflow-wrap:anywhere}
"""

#: click (or Enter/Space) on a header sorts the rows by that column; again: the other way.
#: Numbers (``data-v``) numerically, text in natural order; empty cells always last.
_SORT_JS = """
(function(){
function key(row,i){var c=row.cells[i];if(!c)return null;var v=c.getAttribute('data-v');
if(v!==null&&v!=='')return parseFloat(v);var s=c.textContent.trim();
return(s===''||s==='n/a')?null:s;}
function sortBy(table,th,i){var asc=th.getAttribute('aria-sort')!=='ascending';
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(h){
h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a,i),y=key(b,i);
if(x===null)return y===null?0:1;if(y===null)return -1;
var n=(typeof x==='number'&&typeof y==='number')?x-y:
String(x).localeCompare(String(y),undefined,{numeric:true});return asc?n:-n;});
rows.forEach(function(r){body.appendChild(r);});}
document.querySelectorAll('table.sortable').forEach(function(table){
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
if(th.classList.contains('nosort'))return;th.tabIndex=0;th.title='sort by this column';
th.addEventListener('click',function(){sortBy(table,th,i);});
th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){
e.preventDefault();sortBy(table,th,i);}});});});
})();
"""


def _problem_list(title: str, rows: list[dict[str, Any]], css: str) -> list[str]:
    if not rows:
        return []
    parts = [f"<h2>{title} ({len(rows)})</h2><ul class='{css}'>"]
    for row in rows:
        parts.append(f"<li><b>{html.escape(str(row.get('notebook')))} / "
                     f"{html.escape(str(row.get('label')))}</b>: "
                     f"<span class='error'>{html.escape(str(row.get('error', '')))}</span></li>")
    parts.append("</ul>")
    return parts


def write_index(root: str | os.PathLike[str]) -> Path:
    """Write ``<root>/index.html`` linking every report folder found under ``root``.

    One section per notebook: a sortable table with one row per report (status, event
    metadata if known, headline numbers: union of keys in first-seen order, figure thumbnails),
    or a two-column table for a notebook with a single report; layout and number formats in
    the module docstring. Failed and incomplete reports (module docstring) are highlighted with
    their one-line reason and listed again at the top. The file is replaced atomically; an OS
    error (full disk, read-only) raises a one-line :class:`~crackdown.errors.CrackdownError`
    naming it.
    """
    root = Path(root)
    sections = _load_statuses(root)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>crackdown reports</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>crackdown reports</h1>",
        (f"<p class='note'>Generated {html.escape(dt.datetime.now().isoformat(timespec='seconds'))}"
         ". Click a column header to sort. Numbers: one format per column; percentages (%) with "
         "2 decimals, p-values with 3 (scientific notation below 0.001); n/a: not available.</p>"),
    ]
    every = [r for rows in sections.values() for r in rows]
    parts += _problem_list("Failed", [r for r in every if r["status"] == "failed"], "failures")
    parts += _problem_list("Incomplete", [r for r in every if r["status"] == "incomplete"],
                           "incomplete")
    if not sections:
        parts.append("<p>No reports found.</p>")
    for notebook, rows in sections.items():
        parts += _section(notebook, rows) if len(rows) > 1 else _single(notebook, rows[0])
    parts.append(f"<script>{_SORT_JS}</script></body></html>")
    path = root / INDEX_FILE
    try:
        report_io.atomic_write(path, "\n".join(parts))
    except OSError as exc:
        raise report_io.io_error(path, exc) from None
    return path


def _breakable(text: str) -> str:
    """Escaped ``text`` with a line-break opportunity after each ``_`` and ``/`` (ids)."""
    return re.sub(r"([_/])", r"\1<wbr>", html.escape(text))


def _link(row: dict[str, Any]) -> str:
    label = _breakable(str(row.get("label")))
    folder = row["_folder"]
    if folder and row.get("html"):
        return f"<a href='{html.escape(folder)}/{html.escape(row['html'])}'>{label}</a>"
    return label


def _status(row: dict[str, Any], limit: int | None = None) -> str:
    """Status, and the error of a failed or incomplete report (cut at a word boundary after
    ``limit`` characters, with the whole error as a tooltip; the list at the top has it all)."""
    state = row["status"]
    if state == "ok":
        return "<span class='status-ok'>ok</span>"
    error = str(row.get("error", ""))
    short = error
    if limit is not None and len(error) > limit:
        short = error[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"
    return (f"<span class='status-{state}'>{state.upper()}</span><div class='error' "
            f"title='{html.escape(error)}'>{html.escape(short)}</div>")


def _thumbs(row: dict[str, Any]) -> str:
    folder = row["_folder"]
    if not folder:
        return ""
    return "".join(
        f"<a href='{html.escape(folder)}/{html.escape(name)}'><img class='thumb' "
        f"src='{html.escape(folder)}/{html.escape(name)}' alt='{html.escape(name)}'></a>"
        for name in (row.get("figures") or []))


def _columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str | None]],
                                                  dict[str, Any]]:
    """Metadata columns, headline columns ``(key, high key or None)`` and the headline texts
    common to every row that has them (at least two rows), which are stated above the table
    (numbers stay in the table, to be sorted and compared)."""
    meta_cols = [c for c in ("date",)
                 if any(c in (r.get("meta") or {}) for r in rows)]
    keys: list[str] = []
    for row in rows:
        for key in row.get("headline") or {}:
            if key not in keys:
                keys.append(key)
    common: dict[str, Any] = {}
    if len(rows) > 1:
        for key in keys:
            present = [r["headline"][key] for r in rows if key in (r.get("headline") or {})]
            if (len(present) > 1 and isinstance(present[0], str)
                    and all(v == present[0] for v in present)):
                common[key] = present[0]
    columns: list[tuple[str, str | None]] = []
    paired: set[str] = set()
    for key in keys:
        if key in common or key in paired:
            continue
        match = _LOW_KEY.match(key)
        word = key[len(match["pre"]):len(match["pre"]) + 3] if match else ""
        high_word = {"low": "high", "Low": "High", "LOW": "HIGH"}.get(word)
        high = high_word.join((match["pre"], match["post"])) if match and high_word else None
        if high is not None and high in keys and high not in common:
            columns.append((key, high))
            paired.add(high)
        else:
            columns.append((key, None))
    return meta_cols, columns, common


def _pair_title(low: str) -> str:
    match = _LOW_KEY.match(low)
    assert match is not None
    return " ".join(f"{match['pre']}{match['post']}".split())


def _formatters(rows: list[dict[str, Any]], columns: list[tuple[str, str | None]]
                ) -> dict[str, Callable[[Any], str]]:
    out = {}
    for key, high in columns:
        names = [key] if high is None else [key, high]
        values = [(r.get("headline") or {}).get(n) for r in rows for n in names]
        fmt = column_formatter(key if high is None else _pair_title(key), values)
        for name in names:
            out[name] = fmt
    return out


def _section(notebook: str, rows: list[dict[str, Any]]) -> list[str]:
    meta_cols, columns, common = _columns(rows)
    fmts = _formatters(rows, columns)
    parts = [f"<h2>{html.escape(notebook)} ({len(rows)} reports)</h2>"]
    if common:
        items = "; ".join(f"{html.escape(k)}: {html.escape(column_formatter(k, [v])(v))}"
                          for k, v in common.items())
        parts.append(f"<p class='common'>In every report: {items}.</p>")
    parts.append("<table class='sortable'><thead><tr><th>Report</th><th>Status</th>")
    parts += [f"<th>{html.escape(c)}</th>" for c in meta_cols]
    parts += [f"<th>{html.escape(k if h is None else _pair_title(k))}</th>" for k, h in columns]
    parts.append("<th class='nosort'>Figures</th></tr></thead><tbody>")
    for row in rows:
        state = row["status"]
        meta = row.get("meta") or {}
        about = [str(meta[c]) for c in ("title", "category", "direction") if meta.get(c)]
        title = (f"<div class='title'>{html.escape(' · '.join(about))}</div>" if about else "")
        parts.append(f"<tr class='{state}'><td class='report'>{_link(row)}{title}</td>"
                     f"<td class='status'>{_status(row, limit=90)}</td>")
        parts += [f"<td class='{c}'>{html.escape(_plain(meta.get(c)) if c in meta else '')}"
                  "</td>" for c in meta_cols]
        headline = row.get("headline") or {}
        for key, high in columns:
            if high is None:
                parts.append(_cell(headline[key], fmts[key]) if key in headline
                             else "<td class='text'></td>")
            elif key in headline or high in headline:
                low_v, high_v = headline.get(key), headline.get(high)
                text = f"[{fmts[key](low_v)}, {fmts[key](high_v)}]"
                sort = f" data-v='{float(low_v)!r}'" if _is_number(low_v) else ""
                parts.append(f"<td class='num'{sort}>{html.escape(text)}</td>")
            else:
                parts.append("<td class='text'></td>")
        parts.append(f"<td class='figures'>{_thumbs(row)}</td></tr>")
    parts.append("</tbody></table>")
    return parts


def _single(notebook: str, row: dict[str, Any]) -> list[str]:
    """A notebook with one report: a two-column table, one line per value."""
    state = row["status"]
    parts = [f"<h2>{html.escape(notebook)} (1 report)</h2>",
             f"<table class='kv {state}'><tbody>",
             f"<tr class='{state}'><th>Report</th><td class='report'>{_link(row)}</td></tr>",
             f"<tr class='{state}'><th>Status</th><td class='status'>{_status(row)}</td></tr>"]
    for key, value in (row.get("meta") or {}).items():
        if key in ("date", "title", "category", "direction"):
            parts.append(f"<tr><th>{html.escape(key)}</th><td class='text'>"
                         f"{html.escape(_plain(value))}</td></tr>")
    for key, value in (row.get("headline") or {}).items():
        parts.append(f"<tr><th>{html.escape(key)}</th>"
                     f"{_cell(value, column_formatter(key, [value]))}</tr>")
    thumbs = _thumbs(row)
    if thumbs:
        parts.append(f"<tr><th>Figures</th><td class='figures'>{thumbs}</td></tr>")
    parts.append("</tbody></table>")
    return parts
