"""The page of `rustlab predict FOLDER --report report.html`: one self-contained HTML file.

Inline CSS and JS, photos as data URIs, nothing fetched: the page can be mailed, archived or opened
on a site laptop offline. A sticky header sums the run up (photos, calls per label, unreadable
photos, ASTM D610 grades); cards show each photo, its overlay and its numbers. The state is in the
URL fragment, so a link (or a headless test) presets it: ``report.html#label=rust&grade=3&sort=name``
(sort: rust, rust-asc, grade, name). Cards are built from the data array in chunks as the user
scrolls (an IntersectionObserver on a "show more" button): 5,000 photos stay a few dozen DOM nodes.
Every text reaches the page escaped here or through ``textContent`` there: file names are user data.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from pathlib import Path, PureWindowsPath

from rustlab.inference.grade import ASTM_D610

_TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
:root{--ink:#1f2328;--mute:#59636e;--line:#d0d7de;--bg:#f6f8fa;--rust:#c2410c;--ok:#1a7f37;--bad:#6e7781;--blue:#0969da}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:10px 18px 8px;
  box-shadow:0 1px 3px rgba(31,35,40,.06)}h1{font-size:18px;margin:0}
.meta{color:var(--mute);font-size:12px;margin:1px 0 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.summary{display:flex;flex-wrap:wrap;gap:8px 22px;align-items:center}
.stats{display:flex;flex-wrap:wrap;gap:6px;align-items:center}.stat{margin-right:4px}.stat b{font-size:16px}
.chip{display:inline-flex;gap:5px;align-items:baseline;padding:2px 10px;border:1px solid var(--line);border-radius:14px;
  background:#fff;font:inherit;color:inherit;cursor:pointer}
.chip b{font-size:15px}.chip:disabled{cursor:default;opacity:.6}.chip.on{box-shadow:0 0 0 2px currentColor}
.chip.rust{border-color:var(--rust);color:var(--rust)}.chip.ok{border-color:var(--ok);color:var(--ok)}
.chip.bad{border-color:var(--bad);color:var(--bad)}.chip.other{border-color:var(--blue);color:var(--blue)}
table.grades{border-collapse:collapse;font-size:12px}
.grades th,.grades td{border:1px solid var(--line);padding:0;text-align:center;min-width:30px}
.grades th:first-child,.grades td:first-child{padding:1px 8px;text-align:left;color:var(--mute);font-weight:400}
.grades button{all:unset;display:block;padding:1px 6px;cursor:pointer}.grades thead button{font-weight:700}
.grades .on,.grades button:focus-visible{outline:2px solid var(--ink);outline-offset:-2px}
.note{color:var(--mute);font-size:12px;margin:6px 0 0}
.controls{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center;margin-top:8px}.controls label{color:var(--mute)}
select{font:inherit;color:var(--ink);padding:2px 4px;border:1px solid var(--line);border-radius:6px;background:#fff}
#showing{margin-left:auto;color:var(--mute)}#showing b{color:var(--ink)}.print-only{display:none}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:14px;padding:14px 18px}
.card{--c:var(--blue);background:#fff;border:1px solid var(--line);border-top:4px solid var(--c);border-radius:8px;
  overflow:hidden;display:flex;flex-direction:column}
.card.rust{--c:var(--rust)}.card.ok{--c:var(--ok)}.card.bad{--c:var(--bad)}
.pics{display:flex;gap:2px;aspect-ratio:8/3;overflow:hidden;background:#e7eaee}  /* hidden: no growing past 8:3 */
figure{flex:1;margin:0;position:relative;min-width:0}figure img{width:100%;height:100%;object-fit:contain;display:block}
figcaption{position:absolute;left:4px;bottom:4px;font-size:11px;padding:0 5px;border-radius:4px;
  background:rgba(31,35,40,.72);color:#fff}
.nopic{flex:1;display:flex;align-items:center;justify-content:center;color:var(--bad);font-size:12px}
.body{padding:7px 10px 9px;display:flex;flex-direction:column;gap:4px}.call{display:flex;align-items:center;gap:8px}
.name{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.pill{font-weight:700;color:#fff;background:var(--c);border-radius:10px;padding:0 8px;font-size:13px}
.conf{margin-left:auto;color:var(--mute);font-size:12px}.conf b{color:var(--ink)}
.prob{display:flex;align-items:center;gap:8px;font-size:12px;color:var(--mute)}
.prob b{color:var(--ink);min-width:34px;text-align:right}
.bar{flex:1;height:6px;background:#e7eaee;border-radius:3px;overflow:hidden}
.bar i{display:block;height:100%;background:var(--rust)}
.facts{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;color:var(--mute)}.facts b{color:var(--ink)}
.facts .g{padding:0 5px;border-radius:4px}
.error{font-size:12px;color:#57606a;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:3px 6px;
  word-break:break-word}
#more{display:block;margin:0 auto 24px;font:inherit;padding:6px 16px;border:1px solid var(--line);border-radius:6px;
  background:#fff;cursor:pointer}
.empty{grid-column:1/-1;color:var(--mute);text-align:center;padding:40px}
@media print{
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  body{background:#fff;font-size:12px}header{position:static;box-shadow:none;padding:0 0 6px}.meta{white-space:normal}
  .controls label,#more,noscript{display:none!important}.print-only{display:inline}
  main{grid-template-columns:repeat(3,1fr);gap:8px;padding:8px 0}.card{break-inside:avoid}
}
</style></head><body>
<header>
<h1>@TITLE@</h1>
<p class="meta" title="@MODEL@">@META@</p>
<div class="summary">
<div class="stats"><span class="stat"><b id="n-photos">@PHOTOS@</b> photos</span>@LABELCHIPS@</div>
@GRADES@
</div>
@NOTE@
<div class="controls">
<label>Label <select id="f-label"><option value="">all labels</option>@LABELOPTIONS@</select></label>
<label id="grade-control"@GRADEHIDDEN@>ASTM D610 grade <select id="f-grade"><option value="">all grades</option>
@GRADEOPTIONS@</select></label>
<label>Sort <select id="f-sort"><option value="rust">rust probability, high to low</option>
<option value="rust-asc">rust probability, low to high</option><option value="grade">grade, worst (0) first</option>
<option value="name">file name</option></select></label>
<span id="showing">showing <b id="n-showing">@TOTAL@</b> of <b id="n-total">@TOTAL@</b>
<span class="print-only" id="view-desc"></span></span>
</div>
</header>
<noscript><p class="empty">This page needs JavaScript to show the photos.</p></noscript>
<main id="grid" data-shown="0"></main>
<button id="more" type="button" hidden>Show more</button>
<script type="application/json" id="report-data">@DATA@</script>
<script>
(function () {
"use strict";
var $ = function (id) { return document.getElementById(id); };
var D = JSON.parse($("report-data").textContent), rows = D.rows, grid = $("grid"), more = $("more");
var sel = {label: $("f-label"), grade: $("f-grade"), sort: $("f-sort")};
var KINDS = {"mask": "rust mask", "grad-cam": "Grad-CAM"}, CHUNK = 48, REACH = 1200;  // REACH: px below the window
var view = [], shown = 0, eager = false;
var names = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});  // img_2 before img_10
function el(tag, cls, text) {  // text only ever through textContent: file names and errors are user data
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function unreadable(r) { return r.error !== null || r.label === null; }
function pct(p) {  // never rounds a real 0.4 % to "0%" or 99.6 % to "100%"
  var v = 100 * p;
  return p === null ? "-" : v > 0 && v < 1 ? "<1%" : v > 99 && v < 100 ? ">99%" : Math.round(v) + "%";
}
function area(a) {  // 3 digits: 0.0123 % or 16.4 %, either side of a grade's limit (0.01 %, 16 %) shows
  return a === null ? "-" : String(+(100 * a).toPrecision(3)) + "%";
}
function byNumber(x, y, dir) {  // missing numbers (unreadable photos) sort last either way
  return x === null ? (y === null ? 0 : 1) : y === null ? -1 : dir * (x - y);
}
var SORTS = {
  "rust": function (a, b) { return byNumber(a.rust_probability, b.rust_probability, -1); },
  "rust-asc": function (a, b) { return byNumber(a.rust_probability, b.rust_probability, 1); },
  "grade": function (a, b) {  // worst first; within a grade, the larger rusted share first
    return byNumber(a.astm_d610, b.astm_d610, 1) || byNumber(a.rust_area, b.rust_area, -1) || SORTS.rust(a, b); },
  "name": function (a, b) { return names.compare(a.name, b.name) || names.compare(a.file, b.file); }
};
function matches(r) {
  var label = sel.label.value, grade = sel.grade.value;
  if (label === D.unreadable_value ? !unreadable(r) : label && r.label !== label) return false;
  return !grade || r.astm_d610 === +grade;
}
function picture(src, caption) {
  var fig = el("figure"), img = fig.appendChild(el("img"));
  img.alt = ""; img.decoding = "async"; img.loading = eager ? "eager" : "lazy";
  img.src = src;  // set only now: a photo is decoded once its card exists
  if (caption) fig.appendChild(el("figcaption", "", caption));
  return fig;
}
function fact(parent, name, value) {
  return parent.appendChild(el("span", "", name + " ")).appendChild(el("b", "", value));
}
function card(r, i) {
  var bad = unreadable(r);
  var c = el("article", "card " + (bad ? "bad" : r.is_rust ? "rust" : r.is_rust === false ? "ok" : ""));
  c.setAttribute("data-file", r.file); c.setAttribute("data-i", i);
  c.setAttribute("data-label", bad ? D.unreadable_value : r.label);
  var pics = c.appendChild(el("div", "pics")), body = el("div", "body");
  if (r.thumb) pics.appendChild(picture(r.thumb, r.overlay ? "photo" : ""));
  else pics.appendChild(el("div", "nopic", bad ? "could not be read" : "no picture"));
  if (r.overlay) pics.appendChild(picture(r.overlay, KINDS[r.overlay_kind] || "overlay"));
  var name = body.appendChild(el("div", "name", r.name)); name.title = r.file;
  var call = body.appendChild(el("div", "call"));
  call.appendChild(el("span", "pill", bad ? "unreadable" : r.label));
  if (bad) { body.appendChild(el("div", "error", r.error || "could not be read")); c.appendChild(body); return c; }
  var conf = call.appendChild(el("span", "conf", "confidence "));
  conf.appendChild(el("b", "", pct(r.confidence))).title = "the model's probability of the label it gave";
  var prob = body.appendChild(el("div", "prob", "rust probability")), bar = prob.appendChild(el("div", "bar"));
  bar.appendChild(el("i")).style.width = (r.rust_probability === null ? 0 : 100 * r.rust_probability) + "%";
  prob.appendChild(el("b", "", pct(r.rust_probability)));
  if (D.graded) {  // a classifier's report has no areas or grades: no row of dashes then
    var facts = body.appendChild(el("div", "facts"));
    fact(facts, "rust area", area(r.rust_area));
    var g = fact(facts, "ASTM D610", r.astm_d610 === null ? "-" : String(r.astm_d610));
    if (r.astm_d610 !== null) g.className = "g", g.style.background = "hsl(" + (8 + 12 * r.astm_d610) + ",70%,88%)";
    fact(facts, "ISO 4628-3", r.iso_4628_3 === null ? "-" : r.iso_4628_3);
  }
  c.appendChild(body);
  return c;
}
function renderMore(all) {
  var end = all ? view.length : Math.min(view.length, shown + CHUNK), part = document.createDocumentFragment();
  for (var i = shown; i < end; i++) part.appendChild(card(rows[view[i]], view[i]));
  grid.appendChild(part);
  grid.setAttribute("data-shown", shown = end);
  more.hidden = shown >= view.length;
  more.textContent = "Show more (" + (view.length - shown) + " left)";
}
function describe() {
  var o = function (s) { return s.options[s.selectedIndex].text; };
  return "\u00b7 " + [o(sel.label), sel.grade.value ? "grade " + sel.grade.value : "", "sorted by " + o(sel.sort)]
    .filter(Boolean).join(", ");
}
function render() {  // from the data array, never from the DOM: filters and sorts cost no card
  var sort = SORTS[sel.sort.value] || SORTS.rust;
  view = [];
  for (var i = 0; i < rows.length; i++) if (matches(rows[i])) view.push(i);
  view.sort(function (a, b) { return sort(rows[a], rows[b]) || a - b; });
  grid.textContent = ""; shown = 0;
  $("n-showing").textContent = view.length; $("view-desc").textContent = describe();
  document.querySelectorAll("[data-set-label]").forEach(function (b) {
    b.classList.toggle("on", !!sel.label.value && b.getAttribute("data-set-label") === sel.label.value); });
  document.querySelectorAll("[data-set-grade]").forEach(function (b) {
    b.classList.toggle("on", b.getAttribute("data-set-grade") === sel.grade.value); });
  if (!view.length) grid.appendChild(el("p", "empty", rows.length ? "No photo matches these filters." : "No photos."));
  renderMore(eager);
  fill();
}
function setSelect(s, value) {  // only a value the select offers; anything else falls back to its first option
  s.selectedIndex = Math.max(0, [].findIndex.call(s.options, function (o) { return o.value === value; }));
}
function readHash() {
  var h = {};
  location.hash.slice(1).split("&").forEach(function (kv) {
    var at = kv.indexOf("="), dec = function (t) { return decodeURIComponent(t.replace(/\+/g, " ")); };
    try { if (at > 0) h[dec(kv.slice(0, at))] = dec(kv.slice(at + 1)); }
    catch (e) { /* a malformed escape: that key keeps its default */ }
  });
  Object.keys(sel).forEach(function (k) { setSelect(sel[k], h[k] === "all" ? "" : h[k]); });
}
function writeHash() {  // the view is a link: copy the URL, or reload, and the same cards come back
  var parts = [];
  Object.keys(sel).forEach(function (k) {
    if (sel[k].selectedIndex > 0) parts.push(k + "=" + encodeURIComponent(sel[k].value)); });
  var url = parts.length ? "#" + parts.join("&") : location.pathname + location.search;
  try { history.replaceState(null, "", url); } catch (e) { /* some file:// setups refuse: the view still works */ }
}
function update() { writeHash(); render(); scrollTo(0, 0); }  // new cards start at the top
Object.keys(sel).forEach(function (k) { sel[k].addEventListener("change", update); });
document.querySelector("header").addEventListener("click", function (e) {
  var b = e.target.closest("[data-set-label],[data-set-grade]");
  if (!b) return;  // a chip shows its photos alone: the other filter goes back to "all"
  setSelect(sel.label, b.getAttribute("data-set-label") || "");
  setSelect(sel.grade, b.getAttribute("data-set-grade") || "");
  update();
});
window.addEventListener("hashchange", function () { readHash(); render(); });
more.addEventListener("click", function () { renderMore(false); });
function fill() {  // chunks until the button is out of reach: the observer reports changes only, not "still there"
  while (!more.hidden && more.getBoundingClientRect().top < innerHeight + REACH) renderMore(false);
}
if ("IntersectionObserver" in window) {
  new IntersectionObserver(function (entries) { if (entries[entries.length - 1].isIntersecting) fill(); },
    {rootMargin: "0px 0px " + REACH + "px 0px"}).observe(more);
}
window.addEventListener("beforeprint", function () {  // paper cannot scroll: every card of the view, loaded
  eager = true; renderMore(true);
  grid.querySelectorAll("img").forEach(function (img) { img.loading = "eager"; });
});
readHash(); render();
})();
</script>
</body></html>
"""


def _number(value) -> float | None:
    """A finite float, or None (JSON has no NaN; the page shows "-")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and not isinstance(value, bool) else None


def _count(value, default: int = 0) -> int:
    number = _number(value)
    return default if number is None else int(number)


def _grade(value) -> int | None:
    """An ASTM D610 grade 0..10, or None."""
    number = _number(value)
    return int(number) if number is not None and number.is_integer() and 0 <= number <= 10 else None


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _picture(value, key: str, i: int) -> str | None:
    """A data URI or None: anything else would make the page fetch (or run) something."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("data:image/"):
        raise ValueError(f"report row {i}: {key!r} must be a data:image/ URI (the page is self-contained)")
    return value


def _row(row, i: int) -> dict:
    if not isinstance(row, dict):
        raise ValueError(f"report row {i}: expected a dict, got {type(row).__name__}")
    file = row.get("file")
    if not isinstance(file, str) or not file:
        raise ValueError(f"report row {i}: missing 'file' (the photo's path as given)")
    out = {"file": file, "name": str(row.get("name") or PureWindowsPath(file).name or file),  # / and \ both split
           "label": _text(row.get("label")), "is_rust": None if row.get("is_rust") is None else bool(row["is_rust"]),
           "astm_d610": _grade(row.get("astm_d610")), "iso_4628_3": _text(row.get("iso_4628_3")),
           "error": _text(row.get("error")), "overlay_kind": _text(row.get("overlay_kind"))}
    out.update({key: _number(row.get(key)) for key in ("confidence", "rust_probability", "rust_area")})
    out.update({key: _picture(row.get(key), key, i) for key in ("thumb", "overlay")})
    return out


def _unreadable(row: dict) -> bool:
    return row["error"] is not None or row["label"] is None


def _labels(rows: list[dict], counts: dict) -> list[tuple[str, str]]:
    """(label, colour class) for every label, rust first, then by count: the order an inspector reads."""
    rusty = {r["label"] for r in rows if r["is_rust"] and r["label"] is not None}
    clean = {r["label"] for r in rows if r["is_rust"] is False and r["label"] is not None}
    found = set(counts) | {r["label"] for r in rows if r["label"] is not None}
    rusty |= {"rust"} & found - clean  # a label only the summary's counts know: rust by its name
    colour = {name: "rust" if name in rusty else "ok" if name in clean else "other" for name in found}
    return [(name, colour[name]) for name in sorted(found, key=lambda n: (n not in rusty, -counts.get(n, 0), n))]


def _grade_range(grade: int) -> str:
    """ASTM D610's rusted share for ``grade``, e.g. "over 10 % up to 16 % rusted"."""
    limits = dict(ASTM_D610)
    low = limits.get(grade + 1)
    return f"at most {limits[grade]:g} % rusted" if low is None else f"over {low:g} % up to {limits[grade]:g} % rusted"


def _grades_table(grades: dict[int, int]) -> str:
    """Photos per ASTM D610 grade, best (10) to worst (0) as the standard's table runs; a click filters."""
    head, body = [], []
    for grade in sorted((g for g, n in grades.items() if n), reverse=True):
        tip = html.escape(f"ASTM D610 grade {grade}: {_grade_range(grade)}. Click to show these photos.")
        cell = f'<button type="button" data-set-grade="{grade}" title="{tip}">'
        head.append(f'<th style="background:hsl({8 + 12 * grade},70%,88%)">{cell}{grade}</button></th>')  # red..green
        body.append(f"<td>{cell}{grades[grade]}</button></td>")
    return (f'<table class="grades" id="grade-table"><thead><tr><th>ASTM D610 grade</th>{"".join(head)}</tr></thead>'
            f'<tbody><tr><td>photos</td>{"".join(body)}</tr></tbody></table>') if head else ""


def _chip(colour: str, value: str, count: int, text: str) -> str:
    value, text, off = html.escape(value), html.escape(text), " disabled" if count == 0 else ""
    return (f'<button type="button" class="chip {colour}" data-set-label="{value}" title="show the {text} photos"'
            f"{off}><b>{count}</b> {text}</button>")


def _option(value, text: str) -> str:
    return f'<option value="{html.escape(str(value))}">{html.escape(text)}</option>'


def _summary_fill(rows: list[dict], summary: dict, bad: str) -> dict:
    """The header's pieces: the summary's own numbers, the rows' where the summary lacks one.
    ``bad``: the label filter's value for the unreadable photos."""
    in_rows = Counter(r["label"] for r in rows if not _unreadable(r))
    counts = summary.get("counts")
    counts = {str(k): _count(v) for k, v in counts.items()} if isinstance(counts, dict) else dict(in_rows)
    given = summary.get("grades")
    given = given.get("astm_d610") if isinstance(given, dict) else None
    grades = ({g: _count(n) for k, n in given.items() if (g := _grade(k)) is not None} if isinstance(given, dict)
              else Counter(r["astm_d610"] for r in rows if r["astm_d610"] is not None))
    n_bad, labels = sum(map(_unreadable, rows)), _labels(rows, counts)
    chips = [_chip(colour, name, counts.get(name, 0), name) for name, colour in labels]
    chips.append(_chip("bad", bad, _count(summary.get("unreadable"), n_bad), "unreadable"))
    present = sorted(set(grades) | {r["astm_d610"] for r in rows} - {None}, reverse=True)
    model, created, note = (str(summary.get(k) or "") for k in ("model", "created", "note"))
    meta = " \u00b7 ".join(part for part in (model, f"created {created}" if created else "") if part)
    return {"MODEL": html.escape(model), "META": html.escape(meta),
            "PHOTOS": str(_count(summary.get("photos"), len(rows))), "LABELCHIPS": "".join(chips),
            "GRADES": _grades_table(grades), "NOTE": f'<p class="note">{html.escape(note)}</p>' if note else "",
            "LABELOPTIONS": "".join(_option(n, f"{n} ({in_rows[n]})") for n, _ in labels)
            + _option(bad, f"unreadable ({n_bad})"),
            "GRADEOPTIONS": "".join(_option(g, str(g)) for g in present), "GRADEHIDDEN": "" if present else " hidden"}


def _json_for_script(data) -> str:
    """JSON that cannot end its <script> element early: every <, > and & as a JSON escape, which
    JSON.parse reads back as the same characters (they only ever occur inside strings)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def write_report(path, rows: list[dict], *, title: str, summary: dict) -> Path:
    """Write the report page of ``rows`` (predictions in input order) to ``path``; returns ``path``.

    A row: file, name, label, is_rust, confidence, rust_probability, rust_area, astm_d610,
    iso_4628_3, error, thumb, overlay (data URIs), overlay_kind ("mask" or "grad-cam").
    ``summary``: model, created, photos, counts {label: n}, unreadable, grades {"astm_d610":
    {grade: n}}, note. Raises ValueError on a row without a file or with a picture that is not a
    data URI."""
    path = Path(path)
    if not isinstance(summary, dict):
        raise ValueError(f"report summary: expected a dict, got {type(summary).__name__}")
    data_rows = [_row(r, i) for i, r in enumerate(rows)]
    # the filter value of unreadable photos; a label that happens to be called "unreadable" keeps its name
    bad = "unreadable" if all(r["label"] != "unreadable" for r in data_rows) else "(unreadable)"
    data = {"rows": data_rows, "unreadable_value": bad,
            "graded": any(r["rust_area"] is not None or r["astm_d610"] is not None for r in data_rows)}
    fill = {"TITLE": html.escape(str(title)), "TOTAL": str(len(data_rows)), "DATA": _json_for_script(data),
            **_summary_fill(data_rows, summary, bad)}
    page = re.sub(r"@([A-Z]+)@", lambda m: fill[m.group(1)], _TEMPLATE)  # one pass: no value is filled twice
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
