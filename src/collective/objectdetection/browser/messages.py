"""The texts the browser scripts show, translated on the server.

The scripts get them as JSON in a ``data-od-messages`` attribute, so every text of
the UI is translated with the same catalogs as the templates. ``${name}`` stays in
the translation and is filled in by the script.
"""

from collective.objectdetection import _
from zope.i18n import translate

import json


FIGURE_MESSAGES = {
    "status_none": _("Not analysed yet."),
    "status_pending": _("Detecting objects…"),
    "status_done": _("Detected by ${model}."),
    "status_done_empty": _("No objects detected."),
    "status_failed": _("Detection failed: ${error}"),
    "status_skipped": _("Not analysed: ${error}"),
    "load_error": _("Could not load the detections: ${error}"),
    "save_error": _("Could not save: ${error}"),
    "saved": _("Saved."),
    "boxes_title": _("Detected objects: ${labels}"),
    "boxes_title_empty": _("No detected objects shown"),
    "score": _("${percent} %"),
    "added": _("added by an editor"),
    "search_link": _("Find content with ${label}"),
    "hide": _("Hide"),
    "hide_label": _("Hide the label ${label}"),
    "remove": _("Remove"),
    "remove_label": _("Remove the label ${label}"),
    "show": _("Show again"),
    "show_label": _("Show the label ${label} again"),
    "rerun_started": _("Detection started."),
}

STATUS_MESSAGES = {
    "load_error": _("Could not load the status: ${error}"),
    "action_error": _("The request failed: ${error}"),
    "queued": _("Items queued: ${count}"),
    "retry": _("Retry"),
    "retry_label": _("Retry detection of ${title}"),
    "no_failures": _("No failures."),
    "no_model": _("No model information."),
    "recorded_model": _("${model} (from the stored detections)"),
    "progress": _("${processed} of ${total}"),
    "running": _("Running"),
    "finished": _("Finished"),
    "idle": _("Not started"),
}


def messages_json(messages: dict, request) -> str:
    """``messages`` translated for ``request``, as a JSON object."""
    return json.dumps(
        {key: translate(msg, context=request) for key, msg in messages.items()},
        ensure_ascii=False,
    )
