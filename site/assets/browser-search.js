// Search from a web page with a tenant token: plain `fetch` against the API, no library.
// The page sends the token as `X-API-Key`; the API answers a page of another site only when
// the token's key lists that site in its `allowed_origins`.
"use strict";

(function () {
  const form = document.getElementById("vv-search-form");
  if (!form) {
    return;
  }
  const status = document.getElementById("vv-search-status");
  const results = document.getElementById("vv-search-results");
  if (!form.elements.api.value) {
    form.elements.api.value = `${window.location.origin}/api/v2`;
  }

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const base = form.elements.api.value.trim().replace(/\/+$/, "");
    const index = form.elements.index.value.trim();
    results.replaceChildren();
    show("busy", "Searching…");
    let response;
    try {
      response = await fetch(`${base}/indexes/${encodeURIComponent(index)}/search`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-API-Key": form.elements.token.value.trim(),
        },
        body: JSON.stringify({ query: form.elements.query.value, top_k: 10 }),
      });
    } catch (error) {
      show("error", `The API cannot be reached from this page: ${error.message}`);
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      // Every error is a problem: `code` to match on, `detail` to show.
      const code = body && body.code ? body.code : "error";
      const detail = body && body.detail ? body.detail : response.statusText;
      show("error", `${response.status} ${code}: ${detail}`);
      return;
    }
    show("done", `${body.hits.length} hit(s)`);
    for (const hit of body.hits) {
      const item = document.createElement("li");
      // Text only: a segment's text is data, never markup.
      item.textContent = `${hit.media_id} at ${hit.start_seconds} s: ${hit.text}`;
      item.dataset.mediaId = hit.media_id;
      results.append(item);
    }
  });
})();
