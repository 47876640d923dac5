"""Opens driftwood's status page in a real browser (Chromium through Playwright), waits
until it has shown two readings (so that records per second is a figure), the drift table
and the realized-performance table, saves a screenshot, and prints what the page shows as
JSON for the Rust test to check.

    status_page.py URL SCREENSHOT  (CHROMIUM names the browser; default /usr/bin/chromium)
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright


def rows(page, table):
    return [
        [cell.inner_text() for cell in row.query_selector_all("td")]
        for row in page.query_selector_all(f"{table} tbody tr")
    ]


def main():
    url, screenshot = sys.argv[1], sys.argv[2]
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 720})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
        page.goto(url)
        page.wait_for_function(
            "document.getElementById('rate').textContent !== '–'", timeout=20_000
        )
        page.wait_for_selector("#drift tbody tr", timeout=20_000)
        page.wait_for_selector("#realized tbody tr", timeout=20_000)
        shown = {
            "title": page.title(),
            "ready": page.inner_text("#ready"),
            "model": page.inner_text("#model"),
            "rate": page.inner_text("#rate"),
            "scored": page.inner_text("#scored"),
            "lag": page.inner_text("#lag"),
            "drift": rows(page, "#drift"),
            "realized": rows(page, "#realized"),
            "labels": page.inner_text("#labels"),
            "errors": errors,
            # Every request the page made: it loads nothing from elsewhere.
            "requests": sorted({r for r in page.evaluate(
                "performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
            )}),
            "origin": page.evaluate("location.origin"),
        }
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(json.dumps(shown))


if __name__ == "__main__":
    main()
