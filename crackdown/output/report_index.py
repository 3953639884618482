"""``OUTPUT/index.html`` of ``crackdown report``: one table per notebook, every report folder.

Every folder ``OUTPUT/<notebook>/<label>/`` is listed, none silently left out:

* with a valid ``status.json`` (written last, atomically, by the runner): its status (``ok`` /
  ``failed`` with the one-line error), event metadata, headline numbers and figure thumbnails;
* without one, or with an unreadable one, or with ``ok`` but its HTML missing: **incomplete**,
  with the reason (e.g. a folder half-written by an older crackdown or edited by hand);
* a hidden ``.<label>.partial-<pid>-*`` folder whose process is gone (a run killed with
  ``kill -9``): **incomplete**, "left by an interrupted run"; the next run of that report
  removes it. Folders of a batch still running are not listed.

The index is written atomically (:func:`crackdown.output.report_io.atomic_write`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

from crackdown.output import report_io

__all__ = ["INDEX_FILE", "STATUS_FILE", "write_index"]

INDEX_FILE = "index.html"
STATUS_FILE = "status.json"
#: files only a report run writes: a folder holding one of them is a report folder
_REPORT_MARKERS = ("kernel.log", "headline.json", report_io.KERNEL_PID_FILE)


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def _incomplete(notebook: str, label: str, reason: str) -> dict[str, Any]:
    return {"notebook": notebook, "label": label, "status": "incomplete", "error": reason}


def _read_status(folder: Path) -> dict[str, Any] | None:
    """The report row of ``folder`` (an incomplete row when its status is missing or invalid),
    or None when ``folder`` is not a report folder."""
    notebook, label = folder.parent.name, folder.name
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
    for rows in sections.values():
        rows.sort(key=lambda r: (str((r.get("meta") or {}).get("date", "")),
                                 str(r.get("label", ""))))
    return sections


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.35em .7em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fdecea}tr.incomplete td{background:#fff4e5}
.status-ok{color:#1a7f37}.status-failed{color:#b42318;font-weight:600}
.status-incomplete{color:#b54708;font-weight:600}
img.thumb{height:60px;border:1px solid #ccc;margin-right:4px}
td.figures{white-space:nowrap}td.title{min-width:22em;max-width:32em}
td.report,td.date{white-space:nowrap}
.error{font-family:monospace;font-size:.85em;color:#b42318}
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

    One table per notebook; one row per report with its status, event metadata (if known),
    headline numbers (union of keys, in first-seen order) and figure thumbnails. Failed and
    incomplete reports (module docstring) are highlighted with their one-line reason and listed
    again at the top. The file is replaced atomically; an OS error (full disk, read-only)
    raises a one-line :class:`~crackdown.errors.CrackdownError` naming it.
    """
    root = Path(root)
    sections = _load_statuses(root)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>crackdown reports</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>crackdown reports</h1>",
        f"<p>Generated {html.escape(dt.datetime.now().isoformat(timespec='seconds'))}.</p>",
    ]
    every = [r for rows in sections.values() for r in rows]
    parts += _problem_list("Failed", [r for r in every if r["status"] == "failed"], "failures")
    parts += _problem_list("Incomplete", [r for r in every if r["status"] == "incomplete"],
                           "incomplete")
    if not sections:
        parts.append("<p>No reports found.</p>")
    for notebook, rows in sections.items():
        parts += _section(notebook, rows)
    parts.append("</body></html>")
    path = root / INDEX_FILE
    try:
        report_io.atomic_write(path, "\n".join(parts))
    except OSError as exc:
        raise report_io.io_error(path, exc) from None
    return path


def _section(notebook: str, rows: list[dict[str, Any]]) -> list[str]:
    meta_cols = [c for c in ("date", "title", "category", "direction")
                 if any(c in (r.get("meta") or {}) for r in rows)]
    keys: list[str] = []
    for row in rows:
        for key in row.get("headline") or {}:
            if key not in keys:
                keys.append(key)
    parts = [f"<h2>{html.escape(notebook)} ({len(rows)} report(s))</h2>",
             "<table><thead><tr><th>Report</th><th>Status</th>"]
    parts += [f"<th>{html.escape(c)}</th>" for c in meta_cols]
    parts += [f"<th>{html.escape(k)}</th>" for k in keys]
    parts.append("<th>Figures</th></tr></thead><tbody>")
    for row in rows:
        folder = row["_folder"]
        label = html.escape(str(row.get("label")))
        state = row["status"]
        link = (f"<a href='{html.escape(folder)}/{html.escape(row['html'])}'>{label}</a>"
                if folder and row.get("html") else label)
        status = ("<span class='status-ok'>ok</span>" if state == "ok" else
                  f"<span class='status-{state}'>{state.upper()}</span><div class='error'>"
                  f"{html.escape(str(row.get('error', '')))}</div>")
        parts.append(f"<tr class='{state}'><td class='report'>{link}</td><td>{status}</td>")
        meta = row.get("meta") or {}
        parts += [f"<td class='{c}'>{html.escape(_format_value(meta.get(c)))}</td>"
                  for c in meta_cols]
        headline = row.get("headline") or {}
        for key in keys:
            value = headline.get(key)
            cls = " class='num'" if isinstance(value, (int, float)) else ""
            text = _format_value(value) if key in headline else ""
            parts.append(f"<td{cls}>{html.escape(text)}</td>")
        thumbs = "".join(
            f"<a href='{html.escape(folder)}/{html.escape(name)}'><img class='thumb' "
            f"src='{html.escape(folder)}/{html.escape(name)}' alt='{html.escape(name)}'></a>"
            for name in (row.get("figures") or []) if folder)
        parts.append(f"<td class='figures'>{thumbs}</td></tr>")
    parts.append("</tbody></table>")
    return parts
