"""POST @detect: detect objects in an uploaded image and store nothing.

The successor of the 2018 demo's ``POST /predict``: the answer also carries its
``predictions`` list in the old shape.
"""

from collective.objectdetection.detector import detect
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.permissions import RUN_DETECTION
from collective.objectdetection.services.csrf import protect_write
from collective.objectdetection.services.request_body import json_object
from collective.objectdetection.settings import get_settings
from collective.objectdetection.storage import detection_dict
from detector_service.errors import DetectorError
from detector_service.errors import InvalidImage
from detector_service.types import DetectionResult
from plone.restapi.services import Service
from zExceptions import BadRequest

import base64
import binascii


USAGE = (
    'send a multipart field "image" or JSON {"image": {"data": ..., '
    '"encoding": "base64"}}'
)


def uploaded_image(request) -> bytes:
    """The image of a multipart field ``image`` or of a JSON base64 ``image``."""
    upload = request.form.get("image")
    if upload is not None and hasattr(upload, "read"):
        data = upload.read()
    else:
        try:
            image = json_object(request).get("image")
        except BadRequest as exc:
            raise BadRequest(f"{USAGE} ({exc})") from exc
        if not isinstance(image, dict) or not isinstance(image.get("data"), str):
            raise BadRequest(USAGE)
        if image.get("encoding", "base64") != "base64":
            raise BadRequest("only base64 encoding is supported")
        try:
            data = base64.b64decode(image["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"invalid base64 data: {exc}") from exc
    if not data:
        raise BadRequest("the image is empty")
    return data


def serialize_result(result: DetectionResult) -> dict:
    detections = [
        detection_dict(d) for d in sorted(result.detections, key=lambda d: -d.score)
    ]
    return {
        "success": True,
        "image": {"width": result.image_width, "height": result.image_height},
        "model": {
            "name": result.model.name,
            "version": result.model.version,
            "framework": result.model.framework,
        },
        "detections": detections,
        "predictions": [
            {
                "class": d["label"],
                "probability": d["score"],
                "bbox": {
                    "ymin": d["box"]["y_min"],
                    "xmin": d["box"]["x_min"],
                    "ymax": d["box"]["y_max"],
                    "xmax": d["box"]["x_max"],
                },
            }
            for d in detections
        ],
    }


class DetectPost(Service):
    def reply(self) -> dict:
        require_permissions(self.context, RUN_DETECTION)
        # Nothing is stored, but a forged request would spend the detector's time
        # in the user's name: like the other writes, a cookie session needs the token.
        protect_write(self.request)
        data = uploaded_image(self.request)
        try:
            result = detect(data, get_settings())
        except InvalidImage as exc:
            raise BadRequest(f"invalid image: {exc}") from exc
        except DetectorError as exc:
            self.request.response.setStatus(503)
            return {"type": type(exc).__name__, "message": str(exc)}
        return serialize_result(result)
