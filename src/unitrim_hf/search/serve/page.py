"""The search page `unitrim serve` shows at `/`: one static HTML document (inline CSS and script, no external
resources) that calls the JSON API (`GET /api/search`) and builds the result grid with DOM calls (every text from
the index or the query is set as text, never as HTML).

Kept as a Python string so it ships inside the package without package-data settings.
"""

from __future__ import annotations

PAGE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unitrim search</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{background:#fff;border-bottom:1px solid #ddd;padding:1em 1.5em;position:sticky;top:0;z-index:1}
form{display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
#query{flex:1 1 28em;font-size:1.1em;padding:.45em .6em;border:1px solid #aaa;border-radius:6px}
button{font-size:1em;padding:.45em 1em;border-radius:6px;border:1px solid #888;background:#fafafa;cursor:pointer}
fieldset{border:none;display:flex;gap:.8em;margin:0;padding:0}
#status{color:#555;font-size:.9em;margin-top:.5em}#legend{color:#666;font-size:.8em;margin-top:.2em}
#error{color:#a00;margin-top:.5em}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1em;padding:1.5em}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.7em;display:flex;flex-direction:column;gap:.4em}
.media img,.media video{width:100%;max-height:260px;object-fit:contain;background:#111;border-radius:4px;display:block}
.title{font-weight:600;word-break:break-all}.path{color:#777;font-size:.8em;word-break:break-all}
.label{display:inline-block;padding:.1em .55em;border-radius:1em;font-size:.85em;font-weight:600}
.label-match{background:#d7f5dd;color:#146c2e}.label-weak{background:#fff1c9;color:#7a5a00}
.label-no-match{background:#eee;color:#666}
details{font-size:.88em}table{border-collapse:collapse}td{padding:0 .6em 0 0}
.missing{color:#a00;font-size:.9em;padding:2em .5em;background:#fbeaea;border-radius:4px}
</style></head>
<body>
<header>
<form id="search">
<input id="query" name="q" type="search" placeholder="describe what you are looking for" autocomplete="off" autofocus>
<fieldset id="kinds"><label><input type="radio" name="kind" value="video"> videos</label>
<label><input type="radio" name="kind" value="image"> images</label>
<label><input type="radio" name="kind" value="all" checked> both</label></fieldset>
<button type="submit">Search</button>
</form>
<div id="status"></div><div id="error"></div><div id="legend"></div>
</header>
<main id="results"></main>
<script>
"use strict";
const ALIGNMENTS = "alignments: cosine of a text level (sentence, word, triplet) with a visual level (video, frame, " +
  "patch); the score is the logit scale times their mean (images: text_image only).";
function el(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function labelClass(label) { return "label label-" + label.replace(/ /g, "-"); }
function tripletText(t) { return t.filter(Boolean).join(" "); }
function explanation(result, response) {
  const box = el("details", {"class": "why"});
  box.append(el("summary", {}, "why this result"));
  const e = result.explanation || {};
  const triplets = response.query_triplets.map(tripletText).join("; ") || "none";
  box.append(el("div", {}, "query triplets: " + triplets));
  const words = (e.top_words || []).map(w => w.word + " (" + w.score.toFixed(3) + ")").join(", ") || "none";
  box.append(el("div", {"class": "words"}, "matching words: " + words));
  if (e.best_triplet) box.append(el("div", {}, "matching triplet: " + tripletText(e.best_triplet) +
    " (" + e.best_triplet_score.toFixed(3) + ")"));
  if (result.kind === "video") box.append(el("div", {}, "best frame: #" + e.best_frame + " at " +
    e.best_frame_timestamp.toFixed(2) + " s"));
  const table = el("table", {"class": "alignments"});
  for (const [name, value] of Object.entries(result.alignment_scores)) {
    const row = el("tr"); row.append(el("td", {}, name), el("td", {}, value.toFixed(4))); table.append(row);
  }
  box.append(table, el("div", {"class": "path"}, ALIGNMENTS));
  box.append(el("div", {"class": "path"}, "score " + result.score.toFixed(4) + ", coarse " +
    result.coarse_score.toFixed(4) + ", relevance z " + (result.relevance === null ? "-" : result.relevance.toFixed(2))));
  return box;
}
function card(result, response) {
  const node = el("article", {"class": "card", "data-rank": result.rank, "data-path": result.path});
  const media = el("div", {"class": "media"});
  if (result.source_problem) {
    media.append(el("div", {"class": "missing"}, result.source_problem));
  } else {
    media.append(el("img", {"class": "thumbnail", "alt": "best frame of " + result.name, "src": result.thumbnail_url}));
  }
  node.append(media);
  const head = el("div");
  head.append(el("span", {"class": labelClass(result.relevance_label)}, result.relevance_label), " ",
              el("span", {"class": "title"}, result.rank + ". " + result.name));
  node.append(head, el("div", {"class": "path"}, result.path + " (" + result.kind + ")"));
  if (result.kind === "video" && !result.source_problem) {
    const start = result.explanation ? result.explanation.best_frame_timestamp : 0;
    const play = el("button", {"type": "button", "class": "play"}, "\\u25B6 play from " + start.toFixed(2) + " s");
    play.addEventListener("click", () => {
      const video = el("video", {"class": "player", "controls": "", "preload": "auto",
                                 "src": result.media_url + "#t=" + start, "data-start": String(start)});
      video.addEventListener("loadedmetadata", () => {
        if (Math.abs(video.currentTime - start) > 1e-3) video.currentTime = start;
      }, {once: true});
      media.replaceChildren(video);
      play.remove();
    });
    node.append(play);
  }
  node.append(explanation(result, response));
  return node;
}
async function search(event) {
  if (event) event.preventDefault();
  const query = document.getElementById("query").value;
  const kind = document.querySelector("input[name=kind]:checked").value;
  const status = document.getElementById("status"), error = document.getElementById("error");
  const grid = document.getElementById("results");
  error.textContent = ""; status.textContent = "searching\\u2026";
  const parameters = new URLSearchParams({q: query, kind: kind});
  history.replaceState(null, "", "?" + parameters);
  let response;
  try {
    const reply = await fetch("/api/search?" + parameters);
    response = await reply.json();
    if (!reply.ok) throw new Error(response.detail || reply.statusText);
  } catch (failure) {
    status.textContent = ""; error.textContent = "error: " + failure.message; grid.replaceChildren(); return;
  }
  status.textContent = response.results.length + " results of " + response.items + " items (index version " +
    response.version + ", " + response.elapsed_ms.toFixed(0) + " ms)";
  document.getElementById("legend").textContent = response.legend;
  grid.replaceChildren(...response.results.map(result => card(result, response)));
  if (!response.results.length) grid.append(el("p", {}, "no results"));
  document.body.dataset.searched = String(Number(document.body.dataset.searched || 0) + 1);
}
document.getElementById("search").addEventListener("submit", search);
const initial = new URLSearchParams(location.search);
if (initial.get("kind")) for (const radio of document.querySelectorAll("input[name=kind]"))
  radio.checked = radio.value === initial.get("kind");
if (initial.get("q")) { document.getElementById("query").value = initial.get("q"); search(); }
</script>
</body></html>
"""


__all__ = ["PAGE_HTML"]
