"""The audit's review page: one self-contained HTML file (inline CSS and JS, no network).

Cards in suspicion order; a reviewer marks each photo relabel / exclude / keep, and the page
writes ``corrections.csv`` (``source,file,label,reason``). Marks live in localStorage (keyed by
the page's title and path) and can be preset from the URL: ``audit.html#marks=3:exclude,7:relabel``
(ranks; ``rank:relabel:class`` picks the class where there are more than two).
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

from rustlab.data.records import rust_class_index
from rustlab.errors import DataError

_TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
:root{--ink:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#f6f8fa;--rust:#c2410c;--flag:#cf222e;--ok:#1a7f37;--blue:#0969da}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:10px 18px}
h1{font-size:18px;margin:0 0 2px}
.counts{color:var(--mute);margin:0 0 8px}.counts b{color:var(--ink)}
.controls{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center}
.controls label{color:var(--mute)}
select,button,input{font:inherit;color:inherit}
select{padding:3px 4px;border:1px solid var(--line);border-radius:6px;background:#fff}
button{padding:4px 12px;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
button.primary{background:var(--ok);border-color:var(--ok);color:#fff;font-weight:600}
details{margin-top:8px}summary{cursor:pointer;color:var(--mute)}
pre{max-height:25vh;overflow:auto;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;
  margin:6px 0 0;font-size:12px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:14px;padding:14px 18px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden;display:flex;flex-direction:column;
  content-visibility:auto;contain-intrinsic-size:auto 400px}
.card.flagged{border-color:var(--flag);box-shadow:0 0 0 1px var(--flag)}
.card.m-relabel{background:#eef5ff}.card.m-keep{background:#effaf1}
.card.m-exclude{background:#f1f1f1}.card.m-exclude img{opacity:.4}
.thumb{height:190px;background:#e7eaee;display:flex}
.thumb img{width:100%;height:100%;object-fit:contain;display:block}
.body{padding:8px 10px 10px;display:flex;flex-direction:column;gap:5px}
.top{display:flex;gap:6px;align-items:center;flex-wrap:wrap}
.rank{font-weight:700}.score{color:var(--mute);font-size:12px;margin-left:auto}
.badge{font-size:11px;font-weight:600;padding:0 6px;border-radius:10px;border:1px solid}
.badge.flag{color:var(--flag);border-color:var(--flag)}.badge.mask{color:var(--blue);border-color:var(--blue)}
.path{font-size:12px;word-break:break-all}.path .src{color:var(--mute)}
.calls{display:grid;grid-template-columns:1fr 1fr;gap:6px}
.call{border:1px solid var(--line);border-radius:6px;padding:2px 6px}
.call small{display:block;color:var(--mute);font-size:11px}
.call.disagree{border-color:var(--flag)}
.prob{display:flex;align-items:center;gap:8px;font-size:12px;color:var(--mute)}
.bar{flex:1;height:6px;background:#e7eaee;border-radius:3px;overflow:hidden}
.bar i{display:block;height:100%;background:var(--rust)}
.note{font-size:12px;color:#7d4e00}
.marks{display:flex;flex-wrap:wrap;gap:2px 12px}.marks label{white-space:nowrap;cursor:pointer}
.reason{width:100%;padding:3px 6px;border:1px solid var(--line);border-radius:6px;font-size:12px}
.empty{grid-column:1/-1;color:var(--mute);text-align:center;padding:40px}
</style></head><body>
<header>
<h1>@TITLE@</h1>
<p class="counts"><b id="n-photos">@N@</b> photos &middot; <b id="n-flagged">@FLAGGED@</b> flagged &middot;
<b id="n-marked">0</b> marked (<span id="n-relabel">0</span> relabel, <span id="n-exclude">0</span> exclude,
<span id="n-keep">0</span> keep) &middot; <b id="n-shown">@N@</b> shown</p>
<div class="controls">
<label>Show <select id="f-show"><option value="all">all</option><option value="flagged">flagged only</option>
<option value="unmarked">not yet marked</option><option value="marked">marked</option></select></label>
<label>Source <select id="f-source"><option value="">all sources</option>@SOURCES@</select></label>
<label>Given label <select id="f-label"><option value="">all labels</option>@LABELS@</select></label>
<button id="download" class="primary" type="button">Download corrections</button>
<button id="clear" type="button">Clear marks</button>
</div>
<details><summary>Corrections preview (<span id="n-rows">0</span> rows)</summary>
<pre id="corrections-preview"></pre></details>
</header>
<noscript><p class="empty">This page needs JavaScript to show the photos.</p></noscript>
<main id="grid"></main>
<script type="application/json" id="audit-data">@DATA@</script>
<script>
(function () {
"use strict";
var D = JSON.parse(document.getElementById("audit-data").textContent), rows = D.rows, names = D.class_names;
var KEY = "rustlab-audit:" + D.title + ":" + location.pathname, grid = document.getElementById("grid");
var byRank = {}, marks = {}, rendered = 0, $ = function (id) { return document.getElementById(id); };
rows.forEach(function (r, i) { byRank[r.rank] = i; });
function esc(s) {
  return String(s).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
}
function others(r) { return names.filter(function (n) { return n !== r.given_label; }); }
function csvField(s) { s = String(s); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
function setMark(rank, m) {
  if (!(rank in byRank)) return;
  var r = rows[byRank[rank]], o = others(r), cur = marks[rank] || {a: "", l: "", r: ""};
  var a = m.a !== undefined ? m.a : cur.a;
  if (["relabel", "exclude", "keep", ""].indexOf(a) < 0 || (a === "relabel" && (r.kind === "mask" || !o.length))) return;
  var l = m.l !== undefined ? m.l : cur.l;
  if (o.indexOf(l) < 0) l = o[0] || "";
  marks[rank] = {a: a, l: l, r: m.r !== undefined ? m.r : cur.r};
  if (!marks[rank].a && !marks[rank].r) delete marks[rank];
}
function csvText() {
  var out = ["source,file,label,reason"];
  Object.keys(marks).map(Number).sort(function (x, y) { return byRank[x] - byRank[y]; }).forEach(function (k) {
    var m = marks[k], r = rows[byRank[k]];
    if (m.a !== "relabel" && m.a !== "exclude") return;
    var label = m.a === "relabel" ? m.l : "exclude", reason = m.r.trim() || "audit: " + m.a;
    out.push([r.source, r.file, label, reason].map(csvField).join(","));
  });
  return out.join("\r\n") + "\r\n";
}
function cardHtml(r, i) {
  var m = marks[r.rank] || {a: "", l: "", r: ""}, o = others(r), p = r.rust_probability, nm = "m" + i;
  var pct = p === null ? "\u2014" : (100 * p).toFixed(p > 0.001 && p < 0.999 ? 0 : 1) + "%";
  var other = names.length === 2 ? names[1 - D.rust_index] : "not " + D.rust_name;
  var call = p === null ? "\u2014" : p >= 0.5 ? D.rust_name : other;
  function radio(v, text) {
    return '<label><input type="radio" name="' + nm + '" value="' + v + '"' + (m.a === v ? " checked" : "") + "> " +
      text + "</label>";
  }
  var relabel = "";
  if (r.kind !== "mask" && o.length === 1) relabel = radio("relabel", "relabel \u2192 " + esc(o[0]));
  else if (r.kind !== "mask" && o.length) {
    relabel = radio("relabel", "relabel \u2192") + ' <select class="to">' + o.map(function (n) {
      return "<option" + (m.l === n ? " selected" : "") + ">" + esc(n) + "</option>"; }).join("") + "</select>";
  }
  return [
    '<article class="card', r.flagged ? " flagged" : "", m.a ? " m-" + m.a : "", '" id="card-', r.rank,
    '" data-i="', i, '"', visible(r) ? "" : " hidden", ">",
    '<div class="thumb"><img loading="lazy" decoding="async" alt="" src="', esc(encodeURI(r.thumb)), '"></div>',
    '<div class="body"><div class="top"><span class="rank">#', r.rank, "</span>",
    r.flagged ? '<span class="badge flag">flagged</span>' : "", r.kind === "mask" ? '<span class="badge mask">mask</span>' : "",
    '<span class="score" title="label quality (lower = more suspicious)">quality ',
    r.score === null ? "\u2014" : r.score.toFixed(3), "</span></div>",
    '<div class="path"><span class="src">', esc(r.source), "/</span>", esc(r.file), "</div>",
    '<div class="calls"><div class="call"><small>given label</small>', esc(r.given_label), "</div>",
    '<div class="call', p !== null && call !== r.given_label ? " disagree" : "", '"><small>model (out of fold)</small>',
    esc(call), "</div></div>",
    '<div class="prob" title="the model\u2019s out-of-fold probability of rust"><div class="bar"><i style="width:',
    p === null ? 0 : 100 * p, '%"></i></div>rust ', pct, "</div>",
    r.note ? '<div class="note">' + esc(r.note) + "</div>" : "",
    '<div class="marks">', relabel, radio("exclude", "exclude"), radio("keep", "keep"), "</div>",
    '<input class="reason" type="text" placeholder="reason, e.g. red paint, not rust" value="', esc(m.r), '">',
    "</div></article>"].join("");
}
function visible(r) {
  var show = $("f-show").value, src = $("f-source").value, lab = $("f-label").value, m = marks[r.rank], a = m ? m.a : "";
  return (show !== "flagged" || r.flagged) && (show !== "marked" || a) && (show !== "unmarked" || !a) &&
    (!src || r.source === src) && (!lab || r.given_label === lab);
}
function renderMore() {
  var end = Math.min(rows.length, rendered + (rendered ? 1000 : 200)), parts = [];
  for (var i = rendered; i < end; i++) parts.push(cardHtml(rows[i], i));
  grid.insertAdjacentHTML("beforeend", parts.join(""));
  rendered = end;
  if (rendered < rows.length) setTimeout(renderMore, 0); else grid.setAttribute("data-rendered", "all");
  refresh(false);
}
function save_() {
  try { localStorage.setItem(KEY, JSON.stringify(marks)); } catch (e) { /* private mode: marks stay in the page */ }
}
function refresh(save) {
  var n = {relabel: 0, exclude: 0, keep: 0}, text = csvText(), shown = 0, cards = grid.children;
  Object.keys(marks).forEach(function (k) { if (marks[k].a) n[marks[k].a]++; });
  for (var i = 0; i < cards.length; i++) if (!cards[i].hidden) shown++;
  $("n-marked").textContent = n.relabel + n.exclude + n.keep;
  ["relabel", "exclude", "keep"].forEach(function (a) { $("n-" + a).textContent = n[a]; });
  $("n-shown").textContent = shown + (rendered < rows.length ? "+" : "");
  $("n-rows").textContent = text.split("\r\n").length - 2;
  $("corrections-preview").textContent = text;
  if (save) save_();
}
function applyFilter() {
  var cards = grid.children;
  for (var i = 0; i < cards.length; i++) cards[i].hidden = !visible(rows[+cards[i].getAttribute("data-i")]);
  refresh(false);
}
function syncCard(card, r) {
  var m = marks[r.rank] || {a: ""};
  card.className = "card" + (r.flagged ? " flagged" : "") + (m.a ? " m-" + m.a : "");
}
grid.addEventListener("change", function (e) {
  var card = e.target.closest(".card"); if (!card) return;
  var r = rows[+card.getAttribute("data-i")], t = e.target;
  if (t.type === "radio") setMark(r.rank, {a: t.value});
  else if (t.classList.contains("to")) {
    setMark(r.rank, {a: "relabel", l: t.value}); card.querySelector('input[value="relabel"]').checked = true;
  }
  else return;
  syncCard(card, r); refresh(true);
});
grid.addEventListener("input", function (e) {
  if (!e.target.classList.contains("reason")) return;
  var card = e.target.closest(".card");
  setMark(rows[+card.getAttribute("data-i")].rank, {r: e.target.value}); refresh(true);
});
["f-show", "f-source", "f-label"].forEach(function (id) { $(id).addEventListener("change", applyFilter); });
$("download").addEventListener("click", function () {
  var url = URL.createObjectURL(new Blob([csvText()], {type: "text/csv;charset=utf-8"})), a = document.createElement("a");
  a.href = url; a.download = "corrections.csv"; document.body.appendChild(a); a.click(); a.remove();
  setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
});
$("clear").addEventListener("click", function () {
  if (!Object.keys(marks).length || !confirm("Clear all marks on this page?")) return;
  marks = {}; try { localStorage.removeItem(KEY); } catch (e) { /* nothing saved */ }
  grid.innerHTML = ""; rendered = 0; renderMore();
});
try {
  var saved = JSON.parse(localStorage.getItem(KEY) || "{}");
  Object.keys(saved).forEach(function (k) { setMark(+k, saved[k]); });
} catch (e) { /* nothing saved, or unreadable */ }
var hash = /(?:^#|&)marks=([^&]*)/.exec(location.hash);
// shared marks: applied over the saved ones, saved, then dropped from the URL so that a reload keeps later changes
if (hash) {
  try { hash = decodeURIComponent(hash[1]); } catch (e) { hash = hash[1]; }
  hash.split(",").forEach(function (item) {
    var f = item.split(":"); if (f.length >= 2) setMark(+f[0], f[2] ? {a: f[1], l: f[2]} : {a: f[1]});
  });
  save_();
  try { history.replaceState(null, "", location.pathname + location.search); } catch (e) { /* file:// may refuse */ }
}
if (!rows.length) grid.innerHTML = '<p class="empty">No photos to review.</p>'; else renderMore();
})();
</script>
</body></html>
"""


def _number(value) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _row(row: dict) -> dict:
    return {"rank": int(row["rank"]), "source": str(row["source"]), "file": str(row["file"]),
            "given_label": str(row["given_label"]), "rust_probability": _number(row["rust_probability"]),
            "score": _number(row["score"]), "flagged": bool(row["flagged"]), "thumb": str(row["thumb"]),
            "kind": "mask" if row.get("kind") == "mask" else "label", "note": str(row.get("note") or "")}


def _options(values) -> str:
    return "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)


def write_page(path: Path, rows: list[dict], *, title: str, class_names: list[str]) -> Path:
    """Write the review page for ``rows`` (already in suspicion order) to ``path``; returns ``path``.

    Each row: source, file, given_label, rust_probability, score, rank, flagged, thumb (relative
    to the page's folder), kind ("label" or "mask") and note."""
    path = Path(path)
    data_rows = [_row(r) for r in rows]
    ranks = [r["rank"] for r in data_rows]
    if len(set(ranks)) != len(ranks):
        raise ValueError("audit page: every row needs its own rank (marks are keyed by rank)")
    names = [str(n) for n in class_names]
    try:
        rust_index = rust_class_index(names)
    except DataError:
        rust_index = 1 if len(names) > 1 else 0
    data = {"title": title, "class_names": names, "rust_index": rust_index,
            "rust_name": names[rust_index] if names else "rust", "rows": data_rows}
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\u0021--")
    given = {r["given_label"] for r in data_rows}
    fill = {"TITLE": html.escape(title), "N": str(len(data_rows)),
            "FLAGGED": str(sum(r["flagged"] for r in data_rows)),
            "SOURCES": _options(sorted({r["source"] for r in data_rows})),
            "LABELS": _options([n for n in names if n in given] + sorted(given - set(names))), "DATA": blob}
    page = re.sub(r"@([A-Z]+)@", lambda m: fill[m.group(1)], _TEMPLATE)  # one pass: no value is filled twice
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
