"""The Zope process imports no ML library: not when the add-on's ZCML is loaded
in a Plone layer, not after a detection ran.

Checked in a fresh interpreter, since this pytest process also runs the detector's
own tests, which import numpy.
"""

from pathlib import Path

import json
import subprocess
import sys


ML_MODULES = ("numpy", "onnxruntime", "cv2", "chainer", "torch")

SCRIPT = """
import json, sys
from collective.objectdetection.testing import INTEGRATION_TESTING

def set_up(layer):
    for base in layer.__bases__:
        set_up(base)
    if layer not in done:
        layer.setUp()
        done.append(layer)

done = []
set_up(INTEGRATION_TESTING)
INTEGRATION_TESTING.testSetUp()
modules = {ML_MODULES!r}
after_zcml = [m for m in modules if m in sys.modules]

from collective.objectdetection import storage
from plone import api
from plone.namedfile.file import NamedBlobImage
from zope.component.hooks import setSite

portal = INTEGRATION_TESTING["portal"]
setSite(portal)
api.portal.set_registry_record("collective.objectdetection.processing_mode", "sync")
api.portal.set_registry_record(
    "collective.objectdetection.detector_addresses", [sys.argv[1]]
)
with open(sys.argv[2], "rb") as f:
    data = f.read()
with api.env.adopt_roles(["Manager"]):
    image = api.content.create(
        container=portal, type="Image", id="dog",
        image=NamedBlobImage(data=data, filename="dog.jpg"),
    )
record = storage.get_record(image)
print(json.dumps({{
    "after_zcml": after_zcml,
    "status": record.status,
    "labels": list(record.effective_labels(0.3)),
    "after_detection": [m for m in modules if m in sys.modules],
}}))
"""


def test_no_ml_library_in_the_zope_process(detector, samples_dir):
    script = SCRIPT.format(ML_MODULES=ML_MODULES)
    completed = subprocess.run(
        [sys.executable, "-c", script, detector.address, str(samples_dir / "dog.jpg")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parent,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["after_zcml"] == []
    assert report["status"] == "done"  # a real detection ran in that process
    assert "dog" in report["labels"]
    assert report["after_detection"] == []
