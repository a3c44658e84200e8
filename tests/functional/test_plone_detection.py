"""Over the real Plone WSGI server, with a real detector process: upload, detect,
search, correct, and survive the detector being down."""

from collective.objectdetection.testing import FUNCTIONAL_TESTING
from collective.objectdetection.worker import DetectionWorker
from plone_rest import configure_site
from plone_rest import DetectorSiteTestCase
from plone_rest import free_port
from plone_rest import image_payload
from plone_rest import session
from plone_rest import wait_for
from unittest.mock import patch

import base64
import pytest
import socket
import unittest


class DetectionOverRestTests(DetectorSiteTestCase):
    def upload(self, name: str) -> str:
        data = (self.samples_dir / name).read_bytes()
        response = self.owner.post("/", json=image_payload(data, name))
        assert response.status_code == 201, response.text
        return response.json()["@id"]

    def detections(self, url: str) -> dict:
        response = self.owner.get(f"{url}/@detections")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_until_done(self, url: str, after_attempts: int = 0) -> dict:
        def done():
            body = self.detections(url)
            finished = body["status"] in ("done", "failed")
            return body if finished and body["attempts"] > after_attempts else None

        return wait_for(done, f"detection of {url}")

    def search(self, **query) -> list[str]:
        response = self.owner.get("/@search", params=query)
        assert response.status_code == 200, response.text
        return [item["@id"] for item in response.json()["items"]]

    def test_upload_is_found_by_search_and_a_collection(self):
        url = self.upload("dog.jpg")
        body = self.wait_until_done(url)
        assert body["status"] == "done"
        assert "dog" in body["labels"]
        assert body["image"]["width"] == 768 and body["image"]["height"] == 576
        assert body["model"]["name"] == "yolov3-tiny"
        dog = next(d for d in body["detections"] if d["label"] == "dog")
        # Boxes are in pixels of the original upload, not of the derivative.
        assert 0 <= dog["box"]["x_min"] < dog["box"]["x_max"] <= 768

        assert url in self.search(detected_objects="dog")
        assert url in self.search(SearchableText="dog")
        assert url not in self.search(detected_objects="giraffe")
        expanded = self.owner.get(url, params={"expand": "detections"}).json()
        assert "dog" in expanded["@components"]["detections"]["labels"]

        collection = self.owner.post(
            "/",
            json={
                "@type": "Collection",
                "title": "Dogs",
                "query": [
                    {
                        "i": "detected_objects",
                        "o": "plone.app.querystring.operation.selection.any",
                        "v": ["dog"],
                    }
                ],
            },
        )
        assert collection.status_code == 201, collection.text
        items = self.owner.get(collection.json()["@id"]).json()["items"]
        assert [item["@id"] for item in items] == [url]

    def test_minimum_score_per_label_set_in_the_control_panel(self):
        panel = "/@controlpanels/objectdetection"
        bad = self.owner.patch(panel, json={"label_min_scores": ["sheep=high"]})
        assert bad.status_code == 400, bad.text
        assert "is not a number" in bad.text
        # person.jpg: dog, person and horse above 0.9; a sheep at about 0.33.
        ok = self.owner.patch(panel, json={"label_min_scores": ["sheep=0.5"]})
        assert ok.status_code == 204, ok.text

        url = self.upload("person.jpg")
        body = self.wait_until_done(url)
        assert any(d["label"] == "sheep" for d in body["detections"])
        assert "sheep" not in body["labels"] and "horse" in body["labels"]
        assert body["label_min_scores"] == {"sheep": 0.5}
        assert url not in self.search(detected_objects="sheep")
        assert url in self.search(detected_objects="horse")

    def test_labels_are_searchable_in_german_and_japanese(self):
        url = self.upload("dog.jpg")
        self.wait_until_done(url)
        assert url in self.search(SearchableText="Hund")
        assert url in self.search(SearchableText="犬")

    def test_corrections_survive_a_rerun(self):
        url = self.upload("dog.jpg")
        first = self.wait_until_done(url)
        assert "bicycle" in first["labels"]
        patched = self.owner.patch(
            f"{url}/@detections",
            json={"hidden_labels": ["bicycle"], "added_labels": ["leash"]},
        )
        assert patched.status_code == 200, patched.text
        assert "bicycle" not in patched.json()["labels"]
        assert url in self.search(detected_objects="leash")

        rerun = self.owner.post(f"{url}/@detections")
        assert rerun.status_code == 202, rerun.text
        assert rerun.json()["status"] == "pending"
        second = self.wait_until_done(url, after_attempts=first["attempts"])
        assert second["hidden_labels"] == ["bicycle"]
        assert second["added_labels"] == ["leash"]
        assert "bicycle" not in second["labels"] and "leash" in second["labels"]
        assert url not in self.search(detected_objects="bicycle")

        assert self.owner.delete(f"{url}/@detections").status_code == 204
        cleared = self.detections(url)
        assert cleared["detections"] == [] and cleared["labels"] == ["leash"]

    def test_detect_endpoint(self):
        data = (self.samples_dir / "dog.jpg").read_bytes()
        multipart = self.owner.post("/@detect", files={"image": ("dog.jpg", data)})
        assert multipart.status_code == 200, multipart.text
        body = multipart.json()
        assert body["success"] is True
        assert "dog" in [p["class"] for p in body["predictions"]]
        assert body["image"] == {"width": 768, "height": 576}

        as_json = self.owner.post(
            "/@detect",
            json={
                "image": {
                    "data": base64.b64encode(data).decode(),
                    "encoding": "base64",
                    "filename": "dog.jpg",
                }
            },
        )
        assert as_json.status_code == 200, as_json.text
        assert "dog" in [d["label"] for d in as_json.json()["detections"]]

        broken = self.owner.post(
            "/@detect", files={"image": ("x.jpg", b"\xff\xd8\xff not an image")}
        )
        assert broken.status_code == 400, broken.text
        assert broken.json()["type"] == "BadRequest"
        # Clean words, not Pillow's "<_io.BytesIO object at 0x...>".
        assert broken.json()["message"] == (
            "invalid image: the file is not an image Pillow can read "
            "(PNG, JPEG, GIF, WebP, ...)"
        )

        configure_site(self.portal, detector_addresses=[f"127.0.0.1:{free_port()}"])
        down = self.owner.post("/@detect", files={"image": ("dog.jpg", data)})
        assert down.status_code == 503, down.text
        assert down.json()["type"] == "DetectorUnavailable"

    def test_status_reports_a_silent_detector_as_unavailable(self):
        # A port that accepts connections and never answers: a hung detector.
        with socket.create_server(("127.0.0.1", 0)) as silent:
            address = f"127.0.0.1:{silent.getsockname()[1]}"
            configure_site(self.portal, detector_addresses=[address])
            detector = self.owner.get("/@detection-status").json()["detector"]
        assert detector["status"] == "UNAVAILABLE"
        assert detector["model"] is None
        assert detector["error"] == f"no answer from {address} within 2 s"

    def test_bodies_that_are_not_json_answer_400(self):
        url = self.upload("dog.jpg")
        not_json = {
            "data": b"hidden_labels=dog",
            "headers": {"Content-Type": "application/json"},
        }
        for method, path in (
            ("POST", "/@detect"),
            ("PATCH", f"{url}/@detections"),
            ("POST", "/@detection-backfill"),
        ):
            response = self.owner.request(method, path, **not_json)
            assert response.status_code == 400, (path, response.text)
            body = response.json()
            assert body["type"] == "BadRequest"
            assert "expected a JSON object" in body["message"]

    def test_replaced_image_hides_the_old_detections_at_once(self):
        url = self.upload("dog.jpg")
        assert "dog" in self.wait_until_done(url)["labels"]
        patched = self.owner.patch(
            f"{url}/@detections", json={"added_labels": ["leash"]}
        )
        assert patched.status_code == 200, patched.text
        # The detector goes away: the new image's run stays pending, observable.
        # Its retries back off no longer than a second, as in DetectorDownTests.
        self.enterContext(patch.object(DetectionWorker, "retry_delay_max", 1.0))
        configure_site(self.portal, detector_addresses=[f"127.0.0.1:{free_port()}"])
        horses = (self.samples_dir / "horses.jpg").read_bytes()
        replaced = self.owner.patch(
            url, json={"image": image_payload(horses, "horses.jpg")["image"]}
        )
        assert replaced.status_code == 204, replaced.text
        body = self.detections(url)
        assert body["status"] == "pending"
        assert body["detections"] == []
        assert body["image"] is None and body["model"] is None
        assert body["labels"] == ["leash"] and body["added_labels"] == ["leash"]
        assert url not in self.search(detected_objects="dog")
        assert url not in self.search(SearchableText="bicycle")  # "dog": in the title
        assert url in self.search(detected_objects="leash")

    def test_status_and_backfill(self):
        url = self.upload("person.jpg")
        self.wait_until_done(url)
        status = self.owner.get("/@detection-status").json()
        assert status["counts"]["done"] == 1
        assert status["detector"]["status"] == "SERVING"
        assert status["detector"]["model"]["name"] == "yolov3-tiny"
        assert status["recorded_model"]["name"] == "yolov3-tiny"

        backfill = self.owner.post("/@detection-backfill", json={"mode": "all"})
        assert backfill.status_code == 202, backfill.text
        assert backfill.json()["queued"] == 1

        def finished():
            progress = self.owner.get("/@detection-status").json()["backfill"]
            return progress if not progress["running"] else None

        progress = wait_for(finished, "the backfill")
        assert progress["processed"] == progress["total"] == 1
        assert progress["finished_at"] is not None


class DetectorDownTests(unittest.TestCase):
    """Uploads while the detector is down: 201 at once, pending, done once back."""

    layer = FUNCTIONAL_TESTING

    @pytest.fixture(autouse=True)
    def _samples(self, samples_dir, start_detector, monkeypatch):
        self.samples_dir = samples_dir
        self.start_detector = start_detector
        # Retry soon, so the test need not wait for the production back-off.
        monkeypatch.setattr(DetectionWorker, "retry_delay_max", 1.0)

    def setUp(self):
        self.portal = self.layer["portal"]
        self.port = free_port()
        configure_site(
            self.portal,
            detector_addresses=[f"127.0.0.1:{self.port}"],
            timeout_seconds=2.0,
        )
        self.owner = session(self, self.portal)

    def test_upload_while_down_then_detected_when_back(self):
        data = (self.samples_dir / "dog.jpg").read_bytes()
        response = self.owner.post("/", json=image_payload(data, "dog.jpg"))
        assert response.status_code == 201, response.text
        url = response.json()["@id"]
        assert self.owner.get(f"{url}/@detections").json()["status"] == "pending"

        wait_for(
            lambda: self.owner.get(f"{url}/@detections").json()["attempts"] >= 1,
            "a failed attempt",
        )
        body = self.owner.get(f"{url}/@detections").json()
        assert body["status"] == "pending"
        assert url in [
            i["@id"]
            for i in self.owner.get(
                "/@search", params={"detection_status": "pending"}
            ).json()["items"]
        ]

        self.start_detector(extra_args=["--port", str(self.port)])
        body = wait_for(
            lambda: (
                (b := self.owner.get(f"{url}/@detections").json())["status"] == "done"
                and b
            ),
            "detection once the detector is back",
        )
        assert "dog" in body["labels"]
