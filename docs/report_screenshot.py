"""Make docs/report.png, the README's picture of the HTML report, from a real run.

    python docs/report_screenshot.py [OUT.png]

Runs docs/report-demo.yaml with the `taskrun` found on PATH (in a temporary folder, with
`--html`), opens the page in Debian's headless Chromium through Selenium as
tests/test_html_report.py does (chromium and chromedriver from the system, nothing
downloaded), points at the task that timed out so that its tooltip shows, and saves the
screenshot.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "report.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)", file=sys.stderr)
        return 2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(HERE / "report-demo.yaml", Path(tmp) / "tasks.yaml")
        subprocess.run(["taskrun", "tasks.yaml", "--html", "report.html", "--no-history", "--output", "quiet"],
                       cwd=tmp, check=False, stdout=subprocess.DEVNULL)  # it fails on purpose (a timeout)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,980",
                    "--hide-scrollbars", "--force-prefers-reduced-motion"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            driver.get((Path(tmp) / "report.html").as_uri())
            bar = driver.find_element("css selector", "rect.bar[data-task=e2e-browser]")
            ActionChains(driver).move_to_element(bar).perform()
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
