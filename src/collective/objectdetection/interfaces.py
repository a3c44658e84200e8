"""The add-on's browser layer and its settings schema (registry records)."""

from collective.objectdetection import _
from collective.objectdetection.thresholds import parse_label_min_score
from plone.app.contenttypes.interfaces import IPloneAppContenttypesLayer
from zope import schema
from zope.interface import Interface
from zope.interface import Invalid


def _valid_label_min_score(line: str) -> bool:
    try:
        parse_label_min_score(line)
    except ValueError as error:
        raise Invalid(str(error)) from error
    return True


class IObjectDetectionLayer(IPloneAppContenttypesLayer):
    """Marker for requests on a site where the add-on is installed.

    It extends plone.app.contenttypes' layer so that our ``image_view`` wins over
    theirs whatever order the site registered the two layers in.
    """


class IDetectionSettings(Interface):
    """Settings stored in plone.app.registry under ``collective.objectdetection``."""

    detector_addresses = schema.List(
        title=_("Detector addresses"),
        description=_(
            "host:port of one or more detector services; calls are balanced "
            "round robin over them."
        ),
        value_type=schema.TextLine(),
        default=["127.0.0.1:50051"],
        required=True,
    )

    timeout_seconds = schema.Float(
        title=_("Timeout (seconds)"),
        description=_("Deadline of one detection call."),
        default=10.0,
        min=0.1,
        required=True,
    )

    root_certificates_path = schema.TextLine(
        title=_("TLS root certificates"),
        description=_(
            "Path to a PEM file with the CA that signed the detector's certificate. "
            "Empty: plain-text connection (loopback or a private network only)."
        ),
        default="",
        required=False,
    )

    token = schema.Password(
        title=_("Access token"),
        description=_("Sent as a bearer token with each call; empty for none."),
        default="",
        required=False,
    )

    min_score = schema.Float(
        title=_("Minimum score"),
        description=_("Detections below this score are stored but not indexed."),
        default=0.3,
        min=0.0,
        max=1.0,
        required=True,
    )

    label_min_scores = schema.List(
        title=_("Minimum score per label"),
        description=_(
            "One line per label, such as person=0.4 or tie=0.6: that label is "
            "indexed from its own minimum score instead of the one above."
        ),
        value_type=schema.TextLine(constraint=_valid_label_min_score),
        default=[],
        required=False,
    )

    label_allow_list = schema.List(
        title=_("Label allow-list"),
        description=_("Only these labels are kept; empty keeps every label."),
        value_type=schema.TextLine(),
        default=[],
        required=False,
    )

    enabled_types = schema.List(
        title=_("Enabled content types"),
        description=_("Content types whose image is sent to the detector."),
        value_type=schema.Choice(
            vocabulary="collective.objectdetection.vocabularies.ImageTypes"
        ),
        default=["Image"],
        required=False,
    )

    excluded_paths = schema.List(
        title=_("Excluded paths"),
        description=_(
            "Content below these paths (relative to the site, e.g. /private) is "
            "never sent to the detector."
        ),
        value_type=schema.TextLine(),
        default=[],
        required=False,
    )

    processing_mode = schema.Choice(
        title=_("Processing"),
        description=_(
            "Asynchronous: a worker thread detects after the upload is saved. "
            "Synchronous: detection runs during the upload (small sites, tests)."
        ),
        values=["async", "sync"],
        default="async",
        required=True,
    )

    derivative_longest_edge = schema.Int(
        title=_("Longest edge sent to the detector (pixels)"),
        description=_(
            "Images are scaled down to this size before they leave Plone; "
            "0 sends the original file."
        ),
        default=1024,
        min=0,
        required=True,
    )

    max_labels_per_item = schema.Int(
        title=_("Labels an editor may add or hide per item"),
        description=_(
            "At most this many labels in each of an item's lists of added and "
            "hidden labels; longer lists are refused."
        ),
        default=100,
        min=1,
        required=True,
    )

    max_label_length = schema.Int(
        title=_("Longest label (characters)"),
        description=_("Labels that editors add or hide have at most this length."),
        default=100,
        min=1,
        required=True,
    )
