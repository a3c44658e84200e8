"""The add-on in a Plone site: install, settings, storage, indexes, triggers."""

from collective.objectdetection import storage
from collective.objectdetection.interfaces import IObjectDetectionLayer
from collective.objectdetection.testing import INTEGRATION_TESTING
from plone import api
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.browserlayer.utils import registered_layers
from plone.namedfile.file import NamedBlobImage
from plone_helpers import FakeClient
from plone_helpers import jpeg

import collective.objectdetection.backfill
import collective.objectdetection.detector
import pytest
import unittest


PREFIX = "collective.objectdetection"


class InstallTests(unittest.TestCase):
    layer = INTEGRATION_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]

    def test_profile_version_is_1001(self):
        setup = api.portal.get_tool("portal_setup")
        assert setup.getLastVersionForProfile(f"{PREFIX}:default") == ("1001",)

    def test_browser_layer(self):
        assert IObjectDetectionLayer in registered_layers()

    def test_registry_defaults(self):
        assert api.portal.get_registry_record(f"{PREFIX}.enabled_types") == ["Image"]
        assert api.portal.get_registry_record(f"{PREFIX}.processing_mode") == "async"
        assert (
            api.portal.get_registry_record(f"{PREFIX}.derivative_longest_edge") == 1024
        )

    def test_catalog_indexes_and_columns(self):
        catalog = api.portal.get_tool("portal_catalog")
        assert catalog._catalog.getIndex("detected_objects").meta_type == "KeywordIndex"
        assert catalog._catalog.getIndex("detection_status").meta_type == "FieldIndex"
        assert {"detected_objects", "detection_status"} <= set(catalog.schema())

    def test_querystring_field(self):
        field = "plone.app.querystring.field.detected_objects"
        assert api.portal.get_registry_record(f"{field}.operations") == [
            "plone.app.querystring.operation.selection.any",
            "plone.app.querystring.operation.selection.all",
        ]
        assert (
            api.portal.get_registry_record(f"{field}.vocabulary")
            == "collective.objectdetection.vocabularies.Labels"
        )

    def test_permissions(self):
        run = self.portal.rolesOfPermission("collective.objectdetection: Run detection")
        manage = self.portal.rolesOfPermission(
            "collective.objectdetection: Manage settings"
        )
        selected = {r["name"] for r in run if r["selected"]}
        assert {"Editor", "Contributor", "Owner", "Site Administrator"} <= selected
        assert "Member" not in selected
        assert {r["name"] for r in manage if r["selected"]} == {
            "Manager",
            "Site Administrator",
        }

    def test_image_types_vocabulary(self):
        from zope.component import getUtility
        from zope.schema.interfaces import IVocabularyFactory

        vocabulary = getUtility(
            IVocabularyFactory, "collective.objectdetection.vocabularies.ImageTypes"
        )(self.portal)
        assert "Image" in vocabulary
        assert "News Item" in vocabulary
        assert "Document" not in vocabulary

    def test_upgrade_step_to_1000_registered(self):
        setup = api.portal.get_tool("portal_setup")
        steps = setup.listUpgrades(f"{PREFIX}:default", show_old=True)
        flat = [
            s for step in steps for s in (step if isinstance(step, list) else [step])
        ]
        assert any(s["dest"] == ("1000",) for s in flat)

    def test_upgrade_to_1001_adds_the_label_limits(self):
        registry = api.portal.get_tool("portal_registry")
        for name in ("max_labels_per_item", "max_label_length"):
            del registry.records[f"{PREFIX}.{name}"]
        setup = api.portal.get_tool("portal_setup")
        setup.setLastVersionForProfile(f"{PREFIX}:default", "1000")
        # Other changes of 1001 have their own steps: find ours among them.
        steps = [
            s
            for step in setup.listUpgrades(f"{PREFIX}:default")
            for s in (step if isinstance(step, list) else [step])
        ]
        ours = [s for s in steps if s["title"] == "Registry records of version 1001"]
        assert [s["dest"] for s in ours] == [("1001",)]
        setup.upgradeProfile(f"{PREFIX}:default", "1001")
        assert api.portal.get_registry_record(f"{PREFIX}.max_labels_per_item") == 100
        assert api.portal.get_registry_record(f"{PREFIX}.max_label_length") == 100
        assert setup.getLastVersionForProfile(f"{PREFIX}:default") == ("1001",)

    def test_upgrade_to_1001_adds_label_min_scores_and_keeps_settings(self):
        setup = api.portal.get_tool("portal_setup")
        registry = api.portal.get_tool("portal_registry")
        api.portal.set_registry_record(f"{PREFIX}.min_score", 0.45)
        del registry.records[f"{PREFIX}.label_min_scores"]
        setup.setLastVersionForProfile(f"{PREFIX}:default", "1000")

        setup.upgradeProfile(f"{PREFIX}:default", dest="1001")

        assert api.portal.get_registry_record(f"{PREFIX}.label_min_scores") == []
        assert api.portal.get_registry_record(f"{PREFIX}.min_score") == 0.45
        assert setup.getLastVersionForProfile(f"{PREFIX}:default") == ("1001",)

    def test_label_min_scores_lines_are_validated(self):
        from collective.objectdetection.interfaces import IDetectionSettings
        from zope.interface import Invalid

        field = IDetectionSettings["label_min_scores"].value_type
        field.validate("person=0.4")
        with pytest.raises(Invalid, match="between 0 and 1"):
            field.validate("person=4")

    def test_uninstall_removes_everything(self):
        installer = api.content.get_view(
            "installer", self.portal, self.layer["request"]
        )
        installer.uninstall_product(PREFIX)
        catalog = api.portal.get_tool("portal_catalog")
        assert "detected_objects" not in catalog.indexes()
        assert "detection_status" not in catalog.schema()
        registry = api.portal.get_tool("portal_registry")
        assert f"{PREFIX}.enabled_types" not in registry.records
        assert f"{PREFIX}.max_label_length" not in registry.records
        assert f"{PREFIX}.label_min_scores" not in registry.records
        assert (
            "plone.app.querystring.field.detected_objects.title" not in registry.records
        )
        assert IObjectDetectionLayer not in registered_layers()
        panel = api.portal.get_tool("portal_controlpanel")
        configlets = [a.getId() for a in panel.listActions()]
        assert "objectdetection" not in configlets
        assert "objectdetection-status" not in configlets


class DetectionTests(unittest.TestCase):
    """Synchronous mode with a stand-in client: what gets stored and indexed."""

    layer = INTEGRATION_TESTING

    @pytest.fixture(autouse=True)
    def fake_client(self, monkeypatch):
        self.client = FakeClient({"dog": 0.9, "bicycle": 0.5, "car": 0.1})
        monkeypatch.setattr(
            collective.objectdetection.detector,
            "get_client",
            lambda settings: self.client,
        )
        # Backfill progress is remembered per process and site: start each test clean.
        monkeypatch.setattr(collective.objectdetection.backfill, "_runs", {})

    def setUp(self):
        self.portal = self.layer["portal"]
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        api.portal.set_registry_record(f"{PREFIX}.processing_mode", "sync")

    def add_image(self, data: bytes, container=None, id="photo"):
        return api.content.create(
            container=container or self.portal,
            type="Image",
            id=id,
            title="A photo",
            image=NamedBlobImage(data=data, filename="photo.jpg"),
        )

    def labels_in_catalog(self, obj):
        catalog = api.portal.get_tool("portal_catalog")
        return catalog.getIndexDataForUID("/".join(obj.getPhysicalPath()))

    def test_upload_detects_and_indexes(self):
        image = self.add_image(jpeg(2048, 1536))
        record = storage.get_record(image)
        assert record.status == storage.DONE
        assert record.model_name == "fake"
        assert (record.width, record.height) == (2048, 1536)
        # The client saw a 1024-pixel derivative; boxes are back in original pixels.
        assert record.detections[0]["box"] == {
            "x_min": 0.0,
            "y_min": 0.0,
            "x_max": 1024.0,
            "y_max": 768.0,
        }
        assert record.effective_labels(0.3) == ("bicycle", "dog")
        found = api.content.find(detected_objects="dog")
        assert [b.UID for b in found] == [api.content.get_uuid(image)]
        assert not api.content.find(detected_objects="car")  # below the min score
        assert [b.getId for b in api.content.find(SearchableText="bicycle")] == [
            "photo"
        ]
        assert api.content.find(detection_status="done")[0].detected_objects == [
            "bicycle",
            "dog",
        ]

    def test_per_label_minimum_scores_decide_what_is_indexed(self):
        from collective.objectdetection.results import reindex

        api.portal.set_registry_record(
            f"{PREFIX}.label_min_scores", ["bicycle=0.6", "car=0.05"]
        )
        image = self.add_image(jpeg())
        assert api.content.find(detected_objects="car")  # 0.1, its own minimum
        assert not api.content.find(detected_objects="bicycle")  # 0.5 < 0.6
        assert api.content.find(detected_objects="dog")  # the global 0.3

        api.portal.set_registry_record(f"{PREFIX}.label_min_scores", [])
        reindex(image)
        assert api.content.find(detected_objects="bicycle")
        assert not api.content.find(detected_objects="car")

    def test_status_names_the_model_of_the_stored_detections(self):
        from collective.objectdetection.status import recorded_model

        assert recorded_model() is None
        self.add_image(jpeg())
        assert recorded_model()["name"] == "fake"

    def test_other_edits_do_not_rerun(self):
        image = self.add_image(jpeg())
        image.title = "Renamed"
        from zope.event import notify
        from zope.lifecycleevent import ObjectModifiedEvent

        notify(ObjectModifiedEvent(image))
        assert self.client.calls == 1

    def test_new_image_data_reruns(self):
        image = self.add_image(jpeg(color="red"))
        first = storage.get_record(image).digest
        from zope.event import notify
        from zope.lifecycleevent import ObjectModifiedEvent

        image.image = NamedBlobImage(data=jpeg(color="blue"), filename="b.jpg")
        notify(ObjectModifiedEvent(image))
        assert self.client.calls == 2
        assert storage.get_record(image).digest != first

    def test_copy_keeps_results_for_same_data(self):
        folder = api.content.create(container=self.portal, type="Folder", id="f")
        image = self.add_image(jpeg())
        copy = api.content.copy(source=image, target=folder)
        assert self.client.calls == 1
        assert storage.get_record(copy).effective_labels(0.3) == ("bicycle", "dog")
        assert len(api.content.find(detected_objects="dog")) == 2

    def test_corrections_survive_rerun(self):
        from collective.objectdetection.processing import request_detection
        from collective.objectdetection.results import reindex

        image = self.add_image(jpeg())
        record = storage.get_record(image)
        record.set_corrections(hidden_labels=["bicycle"], added_labels=["cat"])
        reindex(image)
        assert record.effective_labels(0.3) == ("cat", "dog")
        self.client.labels = {"dog": 0.8, "bicycle": 0.7, "horse": 0.6}
        request_detection(image, force=True)
        assert self.client.calls == 2
        assert storage.get_record(image).effective_labels(0.3) == (
            "cat",
            "dog",
            "horse",
        )
        assert not api.content.find(detected_objects="bicycle")
        assert len(api.content.find(detected_objects="cat")) == 1

    def test_broken_image_fails_without_failing_the_upload(self):
        image = self.add_image(b"\xff\xd8 this is not a jpeg")
        record = storage.get_record(image)
        assert record.status == storage.FAILED
        # Clean words, not Pillow's "<_io.BytesIO object at 0x...>".
        assert record.error == (
            "the file is not an image Pillow can read (PNG, JPEG, GIF, WebP, ...)"
        )
        assert self.client.calls == 0

    def test_detector_down_leaves_pending(self):
        from detector_service.errors import DetectorUnavailable

        def down(*args, **kwargs):
            raise DetectorUnavailable("connection refused")

        self.client.detect = down
        image = self.add_image(jpeg())
        record = storage.get_record(image)
        assert record.status == storage.PENDING
        assert record.attempts == 1
        assert "connection refused" in record.error

    def test_disabled_type_and_excluded_path(self):
        folder = api.content.create(container=self.portal, type="Folder", id="private")
        api.portal.set_registry_record(f"{PREFIX}.excluded_paths", ["/private"])
        image = self.add_image(jpeg(), container=folder)
        assert storage.get_record(image).status == storage.SKIPPED
        news = api.content.create(
            container=self.portal,
            type="News Item",
            id="news",
            image=NamedBlobImage(data=jpeg(), filename="lead.jpg"),
        )
        assert storage.get_record(news) is None
        assert self.client.calls == 0

    def test_news_item_lead_image_when_enabled(self):
        api.portal.set_registry_record(
            f"{PREFIX}.enabled_types", ["Image", "News Item"]
        )
        news = api.content.create(
            container=self.portal,
            type="News Item",
            id="news",
            title="News",
            image=NamedBlobImage(data=jpeg(), filename="lead.jpg"),
        )
        assert storage.get_record(news).status == storage.DONE
        assert [b.getId for b in api.content.find(SearchableText="dog")] == ["news"]
        assert [b.getId for b in api.content.find(SearchableText="News")] == ["news"]

    def test_searchable_text_keeps_the_original_text(self):
        image = self.add_image(jpeg())
        image.description = "zebracrossing"
        image.reindexObject()
        assert [b.getId for b in api.content.find(SearchableText="zebracrossing")] == [
            "photo"
        ]
        assert [b.getId for b in api.content.find(SearchableText="dog")] == ["photo"]

    def test_delete_machine_results_keeps_corrections(self):
        image = self.add_image(jpeg())
        record = storage.get_record(image)
        record.set_corrections(added_labels=["cat"])
        record.clear_machine_results()
        assert record.effective_labels(0.0) == ("cat",)
        assert record.status == storage.NONE

    def test_other_edits_after_delete_do_not_rerun(self):
        from zope.event import notify
        from zope.lifecycleevent import ObjectModifiedEvent

        image = self.add_image(jpeg())
        storage.get_record(image).clear_machine_results()
        image.title = "Renamed"
        notify(ObjectModifiedEvent(image))
        assert self.client.calls == 1
        assert storage.get_record(image).status == storage.NONE
        # New image data still runs.
        image.image = NamedBlobImage(data=jpeg(color="blue"), filename="b.jpg")
        notify(ObjectModifiedEvent(image))
        assert self.client.calls == 2
        assert storage.get_record(image).status == storage.DONE

    def test_new_image_drops_the_old_machine_results_at_once(self):
        from zope.event import notify
        from zope.lifecycleevent import ObjectModifiedEvent

        api.portal.set_registry_record(f"{PREFIX}.processing_mode", "async")
        image = self.add_image(jpeg())
        storage.get_record(image).store_result(
            self.client.detect(jpeg()), storage.get_record(image).digest
        )
        storage.get_record(image).set_corrections(added_labels=["cat"])
        image.reindexObject()
        assert api.content.find(detected_objects="dog")
        image.image = NamedBlobImage(data=jpeg(color="blue"), filename="b.jpg")
        notify(ObjectModifiedEvent(image))
        record = storage.get_record(image)
        assert record.status == storage.PENDING
        assert record.detections == () and record.model_name == ""
        assert (record.width, record.height) == (0, 0)
        assert record.effective_labels(0.0) == ("cat",)
        assert not api.content.find(detected_objects="dog")
        assert api.content.find(detected_objects="cat")

    def test_detect_missing_retries_failed_items(self):
        from collective.objectdetection.backfill import find_candidates
        from collective.objectdetection.backfill import start_backfill
        from detector_service.errors import InvalidImage

        def refuse(*args, **kwargs):
            raise InvalidImage("the detector could not decode it")

        self.client.detect = refuse
        image = self.add_image(jpeg())
        assert storage.get_record(image).status == storage.FAILED
        brains = find_candidates(self.portal, "missing")
        assert [b.UID for b in brains] == [api.content.get_uuid(image)]
        assert start_backfill(self.portal, brains, "missing") == 1
        assert storage.get_record(image).status == storage.PENDING

    def test_detect_missing_finds_items_without_a_record(self):
        """Images added while detection was off (or before the add-on was
        installed) have no record and are not in the status index."""
        from collective.objectdetection.backfill import find_candidates
        from collective.objectdetection.backfill import start_backfill

        api.portal.set_registry_record(f"{PREFIX}.enabled_types", [])
        image = self.add_image(jpeg())
        assert storage.get_record(image) is None
        api.portal.set_registry_record(f"{PREFIX}.enabled_types", ["Image"])
        brains = find_candidates(self.portal, "missing")
        assert [b.UID for b in brains] == [api.content.get_uuid(image)]
        assert start_backfill(self.portal, brains, "missing") == 1
        assert storage.get_record(image).status == storage.PENDING

    def test_detect_missing_after_a_reinstall_skips_detected_items(self):
        """Reinstalling adds the status column anew (empty for every item): the
        records on the items still say which are done."""
        from collective.objectdetection.backfill import find_candidates

        image = self.add_image(jpeg())
        assert storage.get_record(image).status == storage.DONE
        installer = api.content.get_view(
            "installer", self.portal, self.layer["request"]
        )
        installer.uninstall_product(PREFIX)
        installer.install_product(PREFIX)
        api.portal.set_registry_record(f"{PREFIX}.processing_mode", "sync")
        assert find_candidates(self.portal, "missing") == []
        assert len(find_candidates(self.portal, "all")) == 1

    def test_rerun_of_single_items_joins_a_running_backfill(self):
        from collective.objectdetection.backfill import backfill_progress
        from collective.objectdetection.backfill import find_candidates
        from collective.objectdetection.backfill import RERUN
        from collective.objectdetection.backfill import start_backfill

        first = self.add_image(jpeg(color="red"), id="first")
        second = self.add_image(jpeg(color="green"), id="second")
        # Queued only (no commit here), so both stay pending: the run is going on.
        assert start_backfill(self.portal, find_candidates(self.portal, "all"), "all")
        third = self.add_image(jpeg(color="blue"), id="third")
        catalog = api.portal.get_tool("portal_catalog")
        retry = catalog.unrestrictedSearchResults(UID=[api.content.get_uuid(third)])
        assert start_backfill(self.portal, retry, RERUN) == 1
        progress = backfill_progress(self.portal)
        assert progress["mode"] == "all"
        assert (progress["total"], progress["processed"]) == (3, 0)
        assert progress["running"] is True
        for image in (first, second, third):
            assert storage.get_record(image).status == storage.PENDING

    def test_rerun_of_single_items_without_a_running_backfill(self):
        from collective.objectdetection.backfill import backfill_progress
        from collective.objectdetection.backfill import RERUN
        from collective.objectdetection.backfill import start_backfill

        image = self.add_image(jpeg())
        catalog = api.portal.get_tool("portal_catalog")
        brains = catalog.unrestrictedSearchResults(UID=[api.content.get_uuid(image)])
        assert start_backfill(self.portal, brains, RERUN) == 1
        progress = backfill_progress(self.portal)
        assert progress["mode"] == RERUN
        assert (progress["total"], progress["processed"]) == (1, 0)

    def test_label_allow_list(self):
        api.portal.set_registry_record(f"{PREFIX}.label_allow_list", ["dog"])
        image = self.add_image(jpeg())
        assert [d["label"] for d in storage.get_record(image).detections] == ["dog"]


class ResumeTests(unittest.TestCase):
    layer = INTEGRATION_TESTING

    def test_pending_items_are_queued_again(self):
        from collective.objectdetection.queue import enqueue_pending

        portal = self.layer["portal"]
        setRoles(portal, TEST_USER_ID, ["Manager"])
        # Asynchronous mode and no commit: the item stays pending, as after a crash.
        image = api.content.create(
            container=portal,
            type="Image",
            id="photo",
            image=NamedBlobImage(data=jpeg(), filename="photo.jpg"),
        )
        assert storage.get_record(image).status == storage.PENDING
        assert enqueue_pending(portal) == 1


def test_queue_length_counts_the_job_in_progress():
    from collective.objectdetection.queue import DetectionQueue
    from collective.objectdetection.queue import Job

    queue = DetectionQueue()
    first, second = Job(None, ("", "plone"), "a"), Job(None, ("", "plone"), "b")
    queue.put(first)
    queue.put(second)
    assert len(queue) == 2
    job = queue.get(timeout=0)
    assert len(queue) == 2  # one waiting, one in progress
    queue.put(job, delay=60)  # put back for a retry: still counted once
    assert len(queue) == 2
    queue.done(job)
    assert len(queue) == 2  # one waiting, the other waiting for its retry
    assert queue.get(timeout=0) == second
    queue.done(second)
    assert len(queue) == 1
