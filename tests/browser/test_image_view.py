"""The image view in a real browser: headless Debian Chromium, driven by Playwright,
against the Plone WSGI server and a real detector process.

Checks that each drawn box sits where ``@detections`` says (DOM geometry against the
data), that the score slider hides weak boxes, that focusing a label highlights its
box, and that an editor hides a label; saves the screenshot the README shows.
"""

from __future__ import annotations

from pathlib import Path
from playwright.sync_api import sync_playwright
from plone_rest import DetectorSiteTestCase
from plone_rest import PASSWORD
from ui_helpers import upload

import math
import pytest


pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "image-view.png"
VIEWPORT = {"width": 1200, "height": 800}
# Boxes are drawn in the original image's pixels and scaled by the browser; their
# edges may round to the next device pixel.
TOLERANCE_PX = 2.0

DRAWN_BOXES = """() => {
    const img = document.querySelector('.od-figure .od-image').getBoundingClientRect();
    return {
        image: {left: img.left, top: img.top, width: img.width, height: img.height},
        boxes: [...document.querySelectorAll('.od-box')].map((group) => {
            const r = group.querySelector('.od-box-line').getBoundingClientRect();
            return {label: group.dataset.label, score: Number(group.dataset.score),
                    left: r.left, top: r.top, right: r.right, bottom: r.bottom};
        }),
    };
}"""


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make browser-deps`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


class ImageViewInBrowserTests(DetectorSiteTestCase):
    processing_mode = "sync"

    @pytest.fixture(autouse=True)
    def _chromium(self, chromium):
        self.chromium = chromium

    def setUp(self):
        super().setUp()
        self.url = upload(self, self.portal, self.samples_dir / "dog.jpg")
        self.context = self.chromium.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def tearDown(self):
        self.context.close()

    def detections(self) -> dict:
        return self.owner.get(f"{self.url}/@detections").json()

    def log_in(self, user: str) -> None:
        self.page.goto(f"{self.portal_url}/login")
        self.page.fill("#__ac_name", user)
        self.page.fill("#__ac_password", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("#buttons-login")
        cookies = {cookie["name"] for cookie in self.context.cookies()}
        assert "__ac" in cookies, "the login form did not log in"

    def open_view(self) -> None:
        self.page.goto(f"{self.url}/view")
        self.page.wait_for_selector(".od-box")

    def assert_boxes_match(self, body: dict, threshold: float) -> list[dict]:
        """Each drawn box covers the returned box, scaled to the displayed image."""
        expected = [
            d for d in body["detections"] if not d["hidden"] and d["score"] >= threshold
        ]
        drawn = self.page.evaluate(DRAWN_BOXES)
        image = drawn["image"]
        scale_x = image["width"] / body["image"]["width"]
        scale_y = image["height"] / body["image"]["height"]
        assert [b["label"] for b in drawn["boxes"]] == [d["label"] for d in expected]
        for box, detection in zip(drawn["boxes"], expected, strict=True):
            want = detection["box"]
            assert box["left"] == pytest.approx(
                image["left"] + want["x_min"] * scale_x, abs=TOLERANCE_PX
            )
            assert box["top"] == pytest.approx(
                image["top"] + want["y_min"] * scale_y, abs=TOLERANCE_PX
            )
            assert box["right"] == pytest.approx(
                image["left"] + want["x_max"] * scale_x, abs=TOLERANCE_PX
            )
            assert box["bottom"] == pytest.approx(
                image["top"] + want["y_max"] * scale_y, abs=TOLERANCE_PX
            )
        return drawn["boxes"]

    def set_threshold(self, value: float) -> None:
        self.page.fill(".od-threshold-input", str(value))

    def test_boxes_slider_focus_and_hiding_a_label(self):
        body = self.detections()
        assert body["status"] == "done"
        assert "dog" in body["labels"]
        self.log_in("editor")
        self.open_view()

        # Geometry: at the site's minimum score, in a wide and in a narrow window
        # (where the image, and the boxes with it, are scaled down).
        boxes = self.assert_boxes_match(body, body["min_score"])
        assert len(boxes) >= 2, "dog.jpg should show several objects"
        self.page.set_viewport_size({"width": 480, "height": 800})
        shown = self.page.evaluate(DRAWN_BOXES)["image"]["width"]
        assert shown < body["image"]["width"] * 0.75
        self.assert_boxes_match(body, body["min_score"])
        self.page.set_viewport_size(VIEWPORT)

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        self.page.locator(".od-figure").screenshot(path=str(SCREENSHOT))

        # Keyboard: focusing a label's link highlights its box, and only its box.
        self.page.focus('.od-label[data-label="dog"] .od-label-link')
        active = self.page.eval_on_selector_all(
            ".od-box.od-active", "nodes => nodes.map(n => n.dataset.label)"
        )
        assert active and set(active) == {"dog"}
        link = self.page.get_attribute('.od-label[data-label="dog"] a', "href")
        assert link == f"{self.portal_url}/@@search?detected_objects=dog"
        assert self.page.get_attribute(".od-boxes", "role") == "img"
        assert "dog" in self.page.text_content(".od-boxes title")

        # The slider (steps of 0.01): just above the weakest score, its box goes.
        weakest = min(b["score"] for b in boxes)
        threshold = math.floor(weakest * 100 + 1) / 100
        expected = sum(1 for b in boxes if b["score"] >= threshold)
        assert expected < len(boxes)
        self.set_threshold(threshold)
        self.page.wait_for_function(
            "n => document.querySelectorAll('.od-box').length === n", arg=expected
        )
        remaining = self.assert_boxes_match(body, threshold)
        assert all(b["score"] >= threshold for b in remaining)
        self.set_threshold(body["min_score"])
        self.page.wait_for_function(
            "n => document.querySelectorAll('.od-box').length === n", arg=len(boxes)
        )

        # An editor hides a label: stored through PATCH, gone from boxes and index.
        victim = next(b["label"] for b in boxes if b["label"] != "dog")
        self.page.click(f'.od-label[data-label="{victim}"] button[data-action="hide"]')
        self.page.wait_for_selector(f'.od-hidden-label[data-label="{victim}"]')
        assert self.page.locator(f'.od-box[data-label="{victim}"]').count() == 0
        after = self.detections()
        assert victim in after["hidden_labels"]
        assert victim not in after["labels"]
        found = self.owner.get("@search", params={"detected_objects": victim}).json()
        assert self.url not in [item["@id"] for item in found["items"]]

        # ... adds a label, and runs detection again (POST): corrections stay.
        self.page.fill(".od-add-input", "Cat")
        self.page.press(".od-add-input", "Enter")
        self.page.wait_for_selector('.od-label[data-label="cat"]')
        assert "cat" in self.detections()["labels"]
        attempts = self.detections()["attempts"]
        self.page.click(".od-rerun")
        self.page.locator(".od-status").filter(has_text="Detection started.").wait_for()
        after = self.detections()
        assert after["attempts"] == attempts + 1
        assert "cat" in after["labels"] and victim in after["hidden_labels"]
        assert self.errors == []

    def test_anonymous_visitor_sees_boxes_but_no_editor_tools(self):
        self.open_view()
        assert self.page.locator(".od-box").count() >= 1
        assert self.page.locator(".od-editor").is_hidden()
        assert self.page.locator('button[data-action="hide"]').count() == 0
        assert self.errors == []

    def test_status_page_shows_health_counts_and_runs_a_backfill(self):
        self.log_in("siteadmin")
        self.page.goto(f"{self.portal_url}/@@objectdetection-status")
        health = self.page.locator(".od-detector-status")
        health.filter(has_text="SERVING").wait_for()
        done = self.page.locator('tr[data-od-status="done"] .od-count')
        assert done.text_content() == "1"
        assert "yolov3-tiny" in self.page.text_content(".od-detector-model")
        self.page.click('.od-backfill[data-od-mode="all"]')
        message = self.page.locator(".od-status-message")
        message.filter(has_text="Items queued: 1").wait_for()
        self.page.wait_for_function(
            "() => document.querySelector('.od-progress').value === 1"
            " && document.querySelector('.od-progress').max === 1"
        )
        assert self.detections()["attempts"] == 2
        assert self.errors == []
