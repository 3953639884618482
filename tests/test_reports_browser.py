"""The reports and their index in a real browser (headless Chromium), at a 1366-px laptop width.

A small batch of the real notebooks (one event of ``event_study`` and the run-once
``cross_listing``; ``CRACKDOWN_BROWSER_NOTEBOOKS=all`` adds every other notebook) is built
with ``crackdown report``. The index gets three more rows cloned from the event report (a long
title and note, a failed run, larger numbers) and a run killed midway, so its wide table is
tested with the real headline keys. Each page is opened in Chromium with a small script
injected at the top of a copy of it (beside the original, so relative links resolve) that
records JavaScript errors, console errors and failed resource loads, then, after the load
event, the images that did not decode, the page's scroll width against its visible width, the
elements sticking out to the right and, on the index, the result of sorting each table by a
numeric column (clicks on the header). Links and image sources are checked from Python
(local files exist, ``#anchors`` exist, nothing is loaded from the network).

Skipped with a reason when no Chromium is installed (``.ci/run`` installs it from Debian
packages where it can). Flags: headless, no sandbox (root in CI), no GPU, no network services.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from crackdown.cli import main
from crackdown.output import report_index

WIDTH = 1366
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DATA = Path(__file__).parent / "data"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

pytestmark = pytest.mark.slow


def _chromium() -> str | None:
    explicit = os.environ.get("CRACKDOWN_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


# The probe runs first in <head>: it sees every error of the page's own scripts and resources.
_PROBE = """<script>
(function(){
var errors=[];
window.addEventListener('error',function(e){var t=e.target;
if(t&&t!==window&&(t.src||t.href)){errors.push('resource failed: '+(t.src||t.href).slice(0,200));}
else{errors.push('javascript: '+e.message+' at '+e.filename+':'+e.lineno);}},true);
window.addEventListener('unhandledrejection',function(e){errors.push('promise: '+e.reason);});
var ce=console.error;console.error=function(){
errors.push('console.error: '+Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};
function sorted(values,asc){for(var k=1;k<values.length;k++){
if(asc?values[k]<values[k-1]:values[k]>values[k-1])return false;}return true;}
function sortChecks(){var out=[];
document.querySelectorAll('table.sortable').forEach(function(table,t){
var heads=table.tHead.rows[0].cells;
for(var i=0;i<heads.length;i++){
var col=Array.prototype.map.call(table.tBodies[0].rows,function(r){
var c=r.cells[i];return c?c.getAttribute('data-v'):null;});
if(col.filter(function(v){return v!==null;}).length<2)continue;
var res={table:t,column:heads[i].textContent};
['ascending','descending'].forEach(function(dir){heads[i].click();
var v=Array.prototype.map.call(table.tBodies[0].rows,function(r){
return r.cells[i].getAttribute('data-v');}).filter(function(x){return x!==null;})
.map(parseFloat);
res[dir]=heads[i].getAttribute('aria-sort')===dir&&sorted(v,dir==='ascending');});
out.push(res);break;}});return out;}
window.addEventListener('load',function(){setTimeout(function(){
var root=document.documentElement,vw=root.clientWidth;
var broken=Array.prototype.filter.call(document.images,function(i){
return !(i.complete&&i.naturalWidth>0);}).map(function(i){return i.src.slice(0,120);});
var wide=[];
document.querySelectorAll('body *').forEach(function(el){var r=el.getBoundingClientRect();
if(r.width>0&&r.right>vw+1&&wide.length<10){
var inScroller=false;for(var p=el.parentElement;p&&p!==document.body;p=p.parentElement){
var s=getComputedStyle(p);if(/(auto|scroll|hidden)/.test(s.overflowX)){inScroller=true;break;}}
if(!inScroller)wide.push(el.tagName+'.'+el.className+' right='+Math.round(r.right));}});
var report={errors:errors,broken:broken,scrollWidth:root.scrollWidth,clientWidth:vw,
innerWidth:window.innerWidth,wide:wide,images:document.images.length,
sort:sortChecks(),errorsAfterSort:null};
report.errorsAfterSort=errors.slice();
var pre=document.createElement('pre');pre.id='crackdown-browser-check';
pre.textContent=JSON.stringify(report);document.body.appendChild(pre);},50);});
})();
</script>"""


def _open_in_chromium(chromium: str, page: Path, profile: Path) -> dict:
    """Load ``page`` (via an instrumented copy beside it) at 1366 px; the probe's report."""
    text = page.read_text(encoding="utf-8")
    match = re.search(r"<head[^>]*>", text, re.IGNORECASE)
    at = match.end() if match else 0
    copy = page.with_name(f".browser-check-{page.name}")
    copy.write_text(text[:at] + _PROBE + text[at:], encoding="utf-8")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               f"--window-size={WIDTH},900", "--hide-scrollbars", "--virtual-time-budget=15000",
               "--dump-dom", copy.as_uri()]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)
    finally:
        copy.unlink(missing_ok=True)
    found = re.search(r"<pre id=\"crackdown-browser-check\">(.*?)</pre>", done.stdout, re.DOTALL)
    assert found, (f"{page}: no probe report from Chromium (exit {done.returncode}); stderr: "
                   f"{done.stderr[-2000:]}")
    return json.loads(html.unescape(found[1]))


class _Refs(HTMLParser):
    """Every href/src of a page, and its element ids and anchor names."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name) and (name == "id" or tag == "a"):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) is not None and tag in ("a", "img", "link", "script", "iframe",
                                                       "source", "video", "audio"):
                self.refs.append((tag, attrs[name]))


def _check_links(page: Path) -> list[str]:
    """Broken references of ``page``: missing local files or anchors, network resources."""
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    problems = []
    for tag, ref in parser.refs:
        parts = urlsplit(ref)
        if parts.scheme == "data":
            continue
        if parts.scheme in ("http", "https") or ref.startswith("//"):
            if tag != "a":  # a page that loads a script/image/style from the network
                problems.append(f"<{tag}> loads {ref} from the network")
            continue
        if parts.scheme:
            problems.append(f"<{tag}> {ref}: unexpected scheme")
            continue
        if not parts.path:
            # as a browser does: the raw fragment, then its percent-decoded form
            if parts.fragment and not {parts.fragment, unquote(parts.fragment)} & parser.ids:
                problems.append(f"<{tag}> {ref}: no element with that id")
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if not target.is_file():
            problems.append(f"<{tag}> {ref}: {target} does not exist")
    return problems


def _clone(out: Path, source: Path, label: str, **changes) -> None:
    """A copy of the report ``source`` named ``label``, its status.json edited."""
    folder = source.parent / label
    shutil.copytree(source, folder)
    for path in folder.iterdir():
        if path.name.startswith(source.name):
            path.rename(folder / path.name.replace(source.name, label, 1))
    status = json.loads((folder / "status.json").read_text())
    status["label"] = label
    status["event_id"] = label
    status["html"] = status["html"].replace(source.name, label, 1)
    status["figures"] = [f.replace(source.name, label, 1) for f in status["figures"]]
    for key, value in changes.items():
        if isinstance(value, dict) and value:  # merged; {} replaces
            status[key] = {**status.get(key, {}), **value}
        else:
            status[key] = value
    (folder / "status.json").write_text(json.dumps(status))


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome or "
                    "CRACKDOWN_CHROMIUM); .ci/run installs the Debian package chromium")
    return path


@pytest.fixture(scope="module")
def built(prices_dir, tmp_path_factory):
    """A small batch of the real notebooks, plus cloned/failed/interrupted index rows."""
    out = tmp_path_factory.mktemp("browser") / "reports"
    event = "alibaba_antitrust_fine"
    names = ["cross_listing"]
    if os.environ.get("CRACKDOWN_BROWSER_NOTEBOOKS") == "all":
        names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb") if p.stem != "event_study")
    code = main(["report", "--notebook", ",".join(["event_study", *names]), "--events", event,
                 "--output", str(out), "--jobs", "1", "--no-progress", "--prices-dir",
                 str(prices_dir)])
    assert code == 0
    source = out / "event_study" / event
    long_title = ("A deliberately long event title, to check that the title column wraps at word "
                  "boundaries instead of pushing the numbers off a laptop screen")
    _clone(out, source, "zz_long_texts", meta={"title": long_title, "date": "2022-01-05"},
           headline={"note": "a long note " * 12, "timing": "assumed: after the close, "
                     "first session next day", "CAAR[-1,+1] (%)": -123.456789,
                     "headline p": 3.2e-07, "cluster": "a_rather_long_cluster_identifier_x"})
    _clone(out, source, "zz_failed", status="failed", headline={},
           error="ValueError: " + "a long one-line error message " * 10 + "(cell 4)")
    _clone(out, source, "zz_big", headline={"firms used": 12345, "firms requested": 12345,
                                            "CI low (%)": -1234.5, "CI high (%)": 2345.6})
    (out / "event_study" / ".zz_killed.partial-999999999-0123abcd").mkdir()  # pid: gone
    report_index.write_index(out)
    pages = {"index": out / "index.html",
             "event_study": source / f"{event}.html"}
    for name in names:
        pages[name] = out / name / f"{name}.html"
    return out, pages


def test_index_fits_sorts_and_has_no_broken_link_image_or_script_error(built, chromium,
                                                                       tmp_path):
    out, pages = built
    report = _open_in_chromium(chromium, pages["index"], tmp_path / "profile")
    assert report["errors"] == [], report["errors"]
    assert report["broken"] == []
    assert report["images"] >= 2 * 4 + 11  # thumbnails: 4 event rows x 2, cross_listing 11
    assert report["clientWidth"] <= WIDTH
    assert report["scrollWidth"] <= report["clientWidth"], report
    assert report["wide"] == [], report["wide"]
    # the event table sorted both ways by its first numeric column, without an error
    assert report["sort"], "no sortable table with a numeric column"
    assert all(r["ascending"] and r["descending"] for r in report["sort"]), report["sort"]
    assert report["errorsAfterSort"] == []
    assert _check_links(pages["index"]) == []
    text = pages["index"].read_text(encoding="utf-8")
    assert "Incomplete (1)" in text and "Failed (1)" in text
    assert "cross_listing/cross_listing.html" in text  # run-once: no repeated folder
    assert not (out / "cross_listing" / "cross_listing").exists()


@pytest.mark.parametrize("name", ["event_study", "cross_listing"])
def test_report_pages_fit_and_have_no_broken_link_image_or_script_error(built, chromium,
                                                                        tmp_path, name):
    _, pages = built
    _check_report(chromium, pages[name], tmp_path)


def test_every_other_notebook_when_asked(built, chromium, tmp_path):
    _, pages = built
    others = [n for n in pages if n not in ("index", "event_study", "cross_listing")]
    if not others:
        pytest.skip("set CRACKDOWN_BROWSER_NOTEBOOKS=all to check every notebook's report")
    for name in others:
        _check_report(chromium, pages[name], tmp_path)


def _check_report(chromium: str, page: Path, tmp_path: Path) -> None:
    report = _open_in_chromium(chromium, page, tmp_path / "profile")
    assert report["errors"] == [], (page.name, report["errors"])
    assert report["broken"] == [], page.name
    assert report["images"] >= 1, page.name
    assert report["clientWidth"] <= WIDTH
    assert report["scrollWidth"] <= report["clientWidth"], (page.name, report)
    assert report["wide"] == [], (page.name, report["wide"])
    assert _check_links(page) == [], page.name
    text = page.read_text(encoding="utf-8")
    assert "highlight hl-ipython3" not in text, f"{page.name}: code cells shown"


def test_link_checker_finds_broken_references(tmp_path):
    """The Python half of the browser test can fail: a missing file, anchor or a CDN script."""
    (tmp_path / "there.png").write_bytes(b"x")
    page = tmp_path / "p.html"
    page.write_text("<html><head><script src='https://cdn.example/x.js'></script></head><body>"
                    "<a id='top' href='#top'>t</a><a href='#nowhere'>n</a>"
                    "<img src='there.png'><img src='missing.png'>"
                    "<a href='https://example.org/'>external link, not loaded</a></body></html>")
    problems = _check_links(page)
    assert len(problems) == 3, problems
    assert any("cdn.example" in p for p in problems)
    assert any("#nowhere" in p for p in problems)
    assert any("missing.png" in p for p in problems)


def test_probe_reports_script_errors_broken_images_and_overflow(chromium, tmp_path):
    """The browser half can fail too: a page with each defect is reported with each."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    "<img src='missing.png'><div style='width:2000px'>wide</div>"
                    "<script>undefinedFunction();</script></body></html>")
    report = _open_in_chromium(chromium, page, tmp_path / "profile")
    assert any("undefinedFunction" in e for e in report["errors"]), report
    assert any("missing.png" in e for e in report["errors"])
    assert len(report["broken"]) == 1
    assert report["scrollWidth"] > WIDTH and report["wide"]
