// The docs site's search box: matches the query against the index built with the site
// (assets/search-index.js), in the browser, with no server. Every word of the query must
// appear in an entry; words in titles (headings, operation ids) rank first.
(function () {
  "use strict";
  var input = document.getElementById("search-input");
  var list = document.getElementById("search-results");
  if (!input || !list) return;
  var entries = (window.VIDEOVECTOR_SEARCH || []).map(function (e) {
    return { entry: e, title: e.t.toLowerCase(), text: e.x.toLowerCase() };
  });
  var LIMIT = 12;

  function find(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0) return [];
    var hits = [];
    entries.forEach(function (candidate, position) {
      var score = 0;
      for (var i = 0; i < words.length; i++) {
        var word = words[i];
        if (candidate.title.indexOf(word) !== -1) score += 10;
        else if (candidate.text.indexOf(word) !== -1) score += 1;
        else return;
      }
      if (candidate.title === words.join(" ") || candidate.title.indexOf(words.join(" ") + " ") === 0) score += 20;
      hits.push({ score: score, position: position, entry: candidate.entry });
    });
    hits.sort(function (a, b) { return b.score - a.score || a.position - b.position; });
    return hits.slice(0, LIMIT).map(function (hit) { return hit.entry; });
  }

  function snippet(text, query) {
    var word = query.toLowerCase().split(/\s+/).filter(Boolean)[0] || "";
    var at = Math.max(0, text.toLowerCase().indexOf(word));
    var start = Math.max(0, at - 60);
    return (start > 0 ? "…" : "") + text.slice(start, start + 160) + (text.length > start + 160 ? "…" : "");
  }

  function show(query) {
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!query.trim()) { list.hidden = true; return; }
    var results = find(query);
    if (results.length === 0) {
      var none = document.createElement("li");
      none.className = "empty";
      none.textContent = "No results for “" + query + "”";
      list.appendChild(none);
    }
    results.forEach(function (e) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = e.u;
      var title = document.createElement("span");
      title.className = "result-title";
      title.textContent = e.t;
      var page = document.createElement("span");
      page.className = "result-page";
      page.textContent = e.p;
      link.appendChild(title);
      link.appendChild(page);
      if (e.x) {
        var text = document.createElement("span");
        text.className = "result-snippet";
        text.textContent = snippet(e.x, query);
        link.appendChild(text);
      }
      item.appendChild(link);
      list.appendChild(item);
    });
    list.hidden = false;
  }

  input.addEventListener("input", function () { show(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { input.value = ""; show(""); }
    if (event.key === "Enter") {
      var first = list.querySelector("a");
      if (first) window.location.href = first.href;
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== input) { event.preventDefault(); input.focus(); }
  });
})();
