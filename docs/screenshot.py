"""The README's screenshot of the web view: the demo's store, served, opened in headless Chromium.

    .venv/bin/python docs/screenshot.py --out docs/web-overview.png

Builds the demo store (the built-in simulator synced over HTTP, one alerting cycle) in a temporary
directory, serves the web view on 127.0.0.1 as `sentinel demo --serve` does, and saves the overview
at 1280x900 as a PNG. Needs the ``playwright`` package (``pip install -e '.[test]'``) and the
system's Chromium (``apt-get install chromium``, or SENTINEL_CHROMIUM=/path/to/chrome); nothing is
downloaded, and Chromium is started with its own background traffic turned off.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browserhelp import CHROMIUM_ARGS, find_chromium

from sentinel.clock import fixed
from sentinel.demo import example_rules, run_demo
from sentinel.observe import HealthServer
from sentinel.web import WebApp, prepare_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/web-overview.png"), help="the PNG to write")
    parser.add_argument("--path", default="/", help="the page to take (default: the overview)")
    parser.add_argument("--days", type=int, default=90, help="days of demo history (default 90)")
    parser.add_argument("--users", type=int, default=60, help="simulated users (default 60)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the first screen")
    args = parser.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        parser.error("no Chromium: `apt-get install chromium`, or set SENTINEL_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        parser.error("no playwright package: `pip install -e '.[test]'`")

    with tempfile.TemporaryDirectory(prefix="sentinel-screenshot-") as tmp:
        store = Path(tmp) / "demo.db"
        print(f"building the demo store ({args.days} days, {args.users} users) ...", file=sys.stderr)
        run_demo(db=store, days=args.days, users=args.users)
        prepare_store(store)
        server = HealthServer(store, "127.0.0.1", 0, clock=fixed(datetime.now(UTC)), web=WebApp(rules=example_rules))
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": args.width, "height": args.height})
                    response = page.goto(server.url + args.path)
                    if response is None or response.status != 200:
                        print(f"{args.path}: status {response.status if response else None}", file=sys.stderr)
                        return 1
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.out), full_page=args.full_page)
                finally:
                    browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
