"""Browser tests with Playwright driving Debian's chromium, against a live server.

    python .ci/browser.py URL EMAIL PASSWORD SCREENSHOT_DIR [STATIC_SITE_URL]

Sets up through the REST API (a token, a search key, an index with segments), then checks:
  Swagger UI at /docs: Authorize with the API key, run `index_search` through "Try it out",
  and see the hit in the live answer (status 200); the example request is shown.
  The docs site at / (and, with STATIC_SITE_URL, the folder `videovector-codegen site` wrote,
  served by a plain static server): every page reachable from the home page renders with
  no console error, failed request or error status; every internal link resolves (the
  file, and the element its #fragment names); the reference has a section for every
  operation in the committed spec, naming its scope, with its example in curl, Python and
  Rust; the example tabs switch every example and are remembered, the copy button copies
  the program shown, an anchor lands below the sticky header, the dark theme follows the
  system's, and pages fit a phone's width with the navigation behind Menu; searching for `rotate` finds the
  API-keys guide and searching for `index_search` finds the operation's section (and a
  query of markup is shown as text).
  The web-page search example (browser-search.html), served by the static server, so another
  origin than the API's: with a tenant token of a key listing that origin, the page finds
  only its tenant's segments through the CORS preflight; with a key that does not list it,
  the page shows `origin_not_allowed`.
Screenshots go to SCREENSHOT_DIR. Exits non-zero on the first failure.
"""

import json
import re
import sys
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEGMENT_TEXT = "The reporter is standing at the station entrance"


def check(condition, message):
    if not condition:
        raise SystemExit(f"browser: FAILED: {message}")


def api(url, method, path, body=None, headers=None):
    request = urllib.request.Request(
        f"{url}/api/v2{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def seed(url, email, password):
    """A search key and an index holding one segment; returns (key, index id)."""
    token = api(url, "POST", "/auth/token", {"email": email, "password": password})["access_token"]
    operator = {"Authorization": f"Bearer {token}"}
    key = api(url, "POST", "/api-keys", {"name": "browser", "scopes": ["write"]}, operator)["secret"]
    index = api(url, "POST", "/indexes", {"name": "Browser archive"}, {"X-API-Key": key})
    segment = {"media_id": "news-1", "start_seconds": 12.0, "end_seconds": 16.5, "text": SEGMENT_TEXT}
    api(url, "POST", f"/indexes/{index['id']}/segments", {"wait": True, "segments": [segment]}, {"X-API-Key": key})
    return key, index["id"]


def tenant_token(key_id, secret, **narrowing):
    """A tenant token minted by the generated SDK's helper (standard library only)."""
    import importlib.util

    helper = Path(__file__).resolve().parent.parent / "sdks/python/videovector_client/tenant_token.py"
    spec = importlib.util.spec_from_file_location("tenant_token", helper)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tenant_token(key_id, secret, 600, **narrowing)


def browser_search(browser, url, email, password, static_site, shots):
    """The example page, on another origin than the API, driven as a visitor would."""
    token = api(url, "POST", "/auth/token", {"email": email, "password": password})["access_token"]
    operator = {"Authorization": f"Bearer {token}"}
    origin = static_site.rstrip("/")
    index = api(url, "POST", "/indexes", {"name": "Two tenants"}, operator)["id"]
    segments = [
        {"media_id": media, "start_seconds": i * 10.0, "end_seconds": i * 10.0 + 5.0,
         "labels": [label], "text": f"the harbour bridge at dawn, reel {i}"}
        for media, label in [("tenant-1-reel", "tenant:1"), ("tenant-2-reel", "tenant:2")]
        for i in range(3)
    ]
    api(url, "POST", f"/indexes/{index}/segments", {"wait": True, "segments": segments}, operator)
    listed = api(url, "POST", "/api-keys",
                 {"name": "shop", "scopes": ["search"], "allowed_origins": [origin]}, operator)
    unlisted = api(url, "POST", "/api-keys", {"name": "elsewhere", "scopes": ["search"]}, operator)

    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    problems = []
    watch(page, problems)
    page.goto(f"{origin}/browser-search.html")

    def search_with(token):
        page.locator('#vv-search-form input[name="api"]').fill(f"{url}/api/v2")
        page.locator('#vv-search-form input[name="token"]').fill(token)
        page.locator('#vv-search-form input[name="index"]').fill(index)
        page.locator('#vv-search-form input[name="query"]').fill("harbour bridge")
        page.locator('#vv-search-form button[type="submit"]').click()
        page.wait_for_function("document.getElementById('vv-search-status').dataset.state !== 'busy'"
                               " && document.getElementById('vv-search-status').textContent !== ''")
        return page.locator("#vv-search-status").inner_text()

    one = tenant_token(listed["key"]["id"], listed["secret"], index_ids=[index], labels=["tenant:1"])
    status = search_with(one)
    media = page.locator("#vv-search-results li").evaluate_all("items => items.map(i => i.dataset.mediaId)")
    page.screenshot(path=str(shots / "browser-search.png"))
    check(status == "3 hit(s)", f"the example page showed {status!r}")
    check(set(media) == {"tenant-1-reel"}, f"the example page showed other tenants' media: {media}")
    check(not problems, f"browser-search: {len(problems)} problems, the first: {problems[:5]}")

    elsewhere = tenant_token(unlisted["key"]["id"], unlisted["secret"], index_ids=[index])
    status = search_with(elsewhere)
    page.screenshot(path=str(shots / "browser-search-refused.png"))
    check("403 origin_not_allowed" in status and origin in status, f"the refusal read {status!r}")
    check(page.locator("#vv-search-results li").count() == 0, "a refused search showed hits")
    page.close()
    print(f"browser: the web-page example on {origin} found only its tenant's 3 hits with a tenant "
          "token, and showed origin_not_allowed for a key that does not list the page")


def watch(page, problems):
    """Records console errors, page errors, failed requests and error statuses."""
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))


def swagger(browser, url, key, index_id, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    watch(page, problems)
    page.goto(f"{url}/docs/")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    api_key_form = dialog.locator(".auth-container").filter(has=page.locator("h4 code", has_text=re.compile("^ApiKey$")))
    api_key_form.locator("#api_key_value").fill(key)
    api_key_form.locator("button.authorize").click()
    # Authorized: the value is masked and the button offers to log out.
    api_key_form.get_by_role("button", name="Remove authorization").wait_for()
    page.screenshot(path=str(shots / "swagger-authorize.png"))
    dialog.locator("button.close-modal").click()

    operation = page.locator("#operations-Search-index_search")
    operation.locator(".opblock-summary").first.click()
    try_it = operation.locator("button.try-out__btn").first
    if try_it.is_visible() and try_it.inner_text().strip() == "Try it out":
        try_it.click()
    # The contract's example request is what Try it out starts from.
    offered = operation.locator("textarea.body-param__text").input_value()
    check("bridge closed by flooding" in offered, f"Swagger UI does not offer the example request: {offered[:300]}")
    operation.locator('tr[data-param-name="index_id"] input').fill(index_id)
    operation.locator("textarea.body-param__text").fill(json.dumps({"query": "reporter at station entrance", "top_k": 5}))
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table tr.response").first
    answer.wait_for()
    status = answer.locator(".response-col_status").inner_text().strip()
    body = answer.locator(".response-col_description pre").first.inner_text()
    operation.screenshot(path=str(shots / "swagger-index-search.png"))
    check(status.startswith("200"), f"Try it out answered {status}: {body[:300]}")
    hits = json.loads(body)["hits"]
    check(hits and hits[0]["text"] == SEGMENT_TEXT, f"Try it out did not show the hit: {body[:300]}")
    curl = operation.locator(".curl-command").first.inner_text()
    check("X-API-Key" in curl, "the request Swagger UI sent did not carry the API key")
    check(not problems, f"Swagger UI: {len(problems)} problems, the first: {problems[:5]}")
    page.close()
    print(f"browser: Swagger UI authorized with an API key and ran index_search: {len(hits)} hit(s)")


def crawl(browser, site, shots, label):
    """Visits every page reachable from the home page; checks links; returns the pages."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems = []
    watch(page, problems)
    origin = urlparse(site).netloc
    queue, seen, pages, links = deque([site + "/"]), set(), {}, []
    while queue:
        address = queue.popleft()
        if address in seen:
            continue
        seen.add(address)
        answer = page.goto(address)
        check(answer is not None and answer.ok, f"{address} answered {answer and answer.status}")
        if "html" not in answer.headers.get("content-type", ""):
            continue
        page.wait_for_load_state("load")
        check(page.locator("main h1").count() >= 1, f"{address} has no heading")
        ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        pages[address] = ids
        for href in hrefs:
            target = urljoin(address, href)
            if urlparse(target).netloc != origin:
                continue
            links.append((address, href, target))
            base, _ = urldefrag(target)
            if base.endswith(".html") or base.endswith("/"):
                queue.append(base)
            else:
                seen.add(base)
                resource = page.request.get(base)
                check(resource.ok, f"{address}: {href} answered {resource.status}")
        name = urlparse(address).path.strip("/").removesuffix(".html") or "index"
        page.screenshot(path=str(shots / f"{label}-{name}.png"))
    for address, href, target in links:
        base, fragment = urldefrag(target)
        if base in pages:
            check(not fragment or fragment in pages[base], f"{address}: {href} names no element")
    check(not problems, f"{label}: {len(problems)} problems, the first: {problems[:5]}")
    page.close()
    print(f"browser: {label}: {len(pages)} pages render with no console error; {len(links)} internal links resolve")
    return pages


def tag_page(tag):
    """The reference page of a tag (the site's slug rule: lower case, spaces to dashes)."""
    return "reference-" + re.sub(r"[^a-z0-9_ -]", "", tag.lower()).replace(" ", "-") + ".html"


def reference_lists_every_operation(browser, site, spec):
    page = browser.new_page()
    count = 0
    for item in spec["paths"].values():
        for method, operation in item.items():
            op_id = operation["operationId"]
            address = f"{site}/{tag_page(operation['tags'][0])}"
            if page.url != address:
                page.goto(address)
            section = page.locator(f'section.operation[id="{op_id}"]')
            check(section.count() == 1, f"the reference has no section for {op_id}")
            facts = section.locator("dl.facts").inner_text()
            scope = operation.get("x-required-scope")
            check(scope is None or scope in facts, f"{op_id}'s section does not name scope {scope}")
            for lang in ("curl", "python", "rust"):
                check(section.locator(f'code[data-example="{op_id}"][data-lang="{lang}"]').count() == 1,
                      f"{op_id} has no {lang} example")
            count += 1
    page.close()
    print(f"browser: the reference has a section, with examples in 3 languages, for each of the spec's {count} operations")


def reference_reads_well(browser, site, shots, label):
    """Tabs, copy buttons, anchors below the sticky header, the dark theme and a phone."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    page = context.new_page()
    problems = []
    watch(page, problems)
    page.goto(f"{site}/reference-indexes.html")

    def visible_languages(op_id):
        return page.locator(f'.examples[data-operation="{op_id}"] [role="tabpanel"]:visible').evaluate_all(
            "els => els.map(e => e.dataset.lang)")

    check(visible_languages("index_create") == ["curl"], f"before a choice: {visible_languages('index_create')}")
    page.locator('#tab-index_create-python').click()
    check(visible_languages("index_create") == ["python"], "the Python tab did not show the Python example")
    check(visible_languages("index_view") == ["python"], "the choice did not switch the page's other examples")
    check(page.locator("#tab-index_create-python").get_attribute("aria-selected") == "true", "the tab is not selected")
    page.locator('.examples[data-operation="index_create"]').screenshot(path=str(shots / f"{label}-tabs-python.png"))
    page.reload()
    check(visible_languages("index_create") == ["python"], "the language choice was not remembered")

    panel = page.locator("#example-index_create-python")
    panel.locator(".copy-button").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = panel.locator("pre").inner_text()
    check(copied.strip() == shown.strip() and "index_create.sync(" in copied, f"the copy button copied {copied[:200]!r}")
    check(panel.locator(".copy-button").inner_text() == "Copied", "the copy button did not say it copied")

    page.goto(f"{site}/reference-search.html#index_search")
    page.wait_for_load_state("load")
    header = page.locator("header.top").bounding_box()
    heading = page.locator('section[id="index_search"] h3').bounding_box()
    check(heading["y"] >= header["y"] + header["height"] - 1,
          f"the anchor's heading is under the sticky header: {heading} {header}")
    check(heading["y"] < 900 / 2, f"the anchor's heading is not near the top: {heading}")
    page.screenshot(path=str(shots / f"{label}-anchor-index_search.png"))
    check(not problems, f"reference: {len(problems)} problems, the first: {problems[:5]}")
    context.close()

    wide = browser.new_context(viewport={"width": 1700, "height": 1000})
    page = wide.new_page()
    page.goto(f"{site}/reference-indexes.html#index_create")
    text = page.locator('section[id="index_create"] > .operation-text').bounding_box()
    example = page.locator('section[id="index_create"] > .examples').bounding_box()
    check(example["x"] >= text["x"] + text["width"] and abs(example["y"] - text["y"]) < 5,
          f"on a wide screen the example is not beside the operation: {text} {example}")
    current = page.locator('nav.sidebar a[aria-current="page"]').bounding_box()
    check(current["y"] + current["height"] <= 1000, f"the navigation does not show the current page: {current}")
    page.screenshot(path=str(shots / f"{label}-wide-reference.png"))
    wide.close()

    dark = browser.new_context(viewport={"width": 1300, "height": 900}, color_scheme="dark")
    page = dark.new_page()
    page.goto(f"{site}/reference-indexes.html#index_search")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
    check(sum(channels) < 150, f"the dark theme's background is {background}")
    keyword = page.locator(".tok-keyword").first.evaluate("e => getComputedStyle(e).color")
    check(keyword != page.evaluate("getComputedStyle(document.body).color"), "code is not highlighted")
    page.screenshot(path=str(shots / f"{label}-dark-reference.png"))
    dark.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    for name in ("index", "reference-indexes", "quickstart"):
        page.goto(f"{site}/{name}.html")
        width = page.evaluate("document.documentElement.scrollWidth")
        check(width <= 390, f"{name} scrolls sideways on a phone ({width} px)")
        heading = page.locator("main h1").bounding_box()
        check(heading["y"] < 844 / 2, f"{name}: the content starts below the fold on a phone ({heading})")
        page.screenshot(path=str(shots / f"{label}-phone-{name}.png"))
    check(not page.locator("nav.sidebar ul").is_visible(), "the navigation is not folded on a phone")
    page.locator(".nav-toggle").click()
    check(page.locator("nav.sidebar ul").is_visible(), "Menu did not open the navigation")
    page.screenshot(path=str(shots / f"{label}-phone-menu.png"))
    phone.close()
    print(f"browser: {label}: tabs switch every example and are remembered, Copy copies the shown program, "
          "an anchor lands below the header, a wide screen shows examples beside operations, the dark theme "
          "follows the system, and pages fit a phone with a Menu")


def search(browser, site, shots, label):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems = []
    watch(page, problems)
    page.goto(f"{site}/")
    box = page.locator("#search-input")
    results = page.locator("#search-results a")

    def hrefs_for(query):
        box.fill(query)
        results.first.wait_for()
        return results.evaluate_all("els => els.map(e => e.getAttribute('href'))")

    rotate = hrefs_for("rotate")
    check(any(h.startswith("api-keys.html") for h in rotate), f"'rotate' did not find the API-keys guide: {rotate}")
    page.screenshot(path=str(shots / f"{label}-search-rotate.png"))
    found = hrefs_for("index_search")
    check("reference-search.html#index_search" in found, f"'index_search' did not find its section: {found}")
    page.screenshot(path=str(shots / f"{label}-search-index_search.png"))
    # A hostile query is shown as text, never markup: no element, no script, no dialog.
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}") or d.dismiss())
    hostile = '<img src=x onerror="alert(1)">'
    box.fill(hostile)
    page.locator("#search-results li").first.wait_for()
    check(page.locator("#search-results img").count() == 0, "a query became markup in the results")
    check(hostile in page.locator("#search-results").inner_text(), "the hostile query is not shown as text")
    hrefs_for("index_search")
    page.locator('#search-results a[href="reference-search.html#index_search"]').click()
    page.wait_for_url("**/reference-search.html#index_search")
    check(page.locator('section.operation[id="index_search"]').is_visible(), "the section is not shown")
    check(not problems, f"search: {len(problems)} problems, the first: {problems[:5]}")
    page.close()
    print(f"browser: {label}: 'rotate' finds the API-keys guide; 'index_search' finds and opens its section; a markup query stays text")


def main():
    url, email, password, shots = sys.argv[1:5]
    static_site = sys.argv[5] if len(sys.argv) > 5 else None
    shots = Path(shots)
    shots.mkdir(parents=True, exist_ok=True)
    key, index_id = seed(url, email, password)
    spec = json.loads(urllib.request.urlopen(f"{url}/api/v2/openapi.json").read())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        swagger(browser, url, key, index_id, shots)
        for label, site in [("site", url)] + ([("static-site", static_site)] if static_site else []):
            crawl(browser, site, shots, label)
            reference_lists_every_operation(browser, site, spec)
            reference_reads_well(browser, site, shots, label)
            search(browser, site, shots, label)
        if static_site:
            browser_search(browser, url, email, password, static_site, shots)
        browser.close()
    print(f"browser: screenshots in {shots}")


if __name__ == "__main__":
    main()
