"""Typed, read-only access to the add-on's registry records."""

from __future__ import annotations

from collective.objectdetection.interfaces import IDetectionSettings
from collective.objectdetection.thresholds import parse_label_min_scores
from dataclasses import dataclass
from dataclasses import field
from plone.registry.interfaces import IRegistry
from types import MappingProxyType
from zope.component import queryUtility


REGISTRY_PREFIX = "collective.objectdetection"


@dataclass(frozen=True)
class DetectionSettings:
    """A snapshot of the settings, safe to hand to another thread."""

    detector_addresses: tuple[str, ...] = ("127.0.0.1:50051",)
    timeout_seconds: float = 10.0
    root_certificates_path: str = ""
    token: str = ""
    min_score: float = 0.3
    # label -> its own minimum score, used instead of min_score for that label
    label_min_scores: MappingProxyType = field(
        default_factory=lambda: MappingProxyType({})
    )
    label_allow_list: tuple[str, ...] = ()
    enabled_types: tuple[str, ...] = ("Image",)
    excluded_paths: tuple[str, ...] = ()
    processing_mode: str = "async"
    derivative_longest_edge: int = 1024
    max_labels_per_item: int = 100
    max_label_length: int = 100

    @property
    def synchronous(self) -> bool:
        return self.processing_mode == "sync"

    def is_excluded(self, site_relative_path: str) -> bool:
        """True when the path lies at or below one of the excluded paths."""
        path = "/" + site_relative_path.strip("/")
        for excluded in self.excluded_paths:
            prefix = "/" + excluded.strip("/")
            if prefix != "/" and (path == prefix or path.startswith(prefix + "/")):
                return True
        return False


def _tuple(value) -> tuple[str, ...]:
    return tuple(v for v in (value or ()) if v)


def is_installed() -> bool:
    """True in a site where the add-on's profile is installed."""
    registry = queryUtility(IRegistry)
    return (
        registry is not None and f"{REGISTRY_PREFIX}.enabled_types" in registry.records
    )


def get_settings() -> DetectionSettings:
    """The current site's settings; the defaults where the add-on is not installed."""
    if not is_installed():
        return DetectionSettings()
    registry = queryUtility(IRegistry)
    proxy = registry.forInterface(
        IDetectionSettings, prefix=REGISTRY_PREFIX, check=False
    )
    defaults = DetectionSettings()

    def read(name):
        value = getattr(proxy, name, None)
        return getattr(defaults, name) if value is None else value

    return DetectionSettings(
        detector_addresses=_tuple(read("detector_addresses")),
        timeout_seconds=float(read("timeout_seconds")),
        root_certificates_path=read("root_certificates_path") or "",
        token=read("token") or "",
        min_score=float(read("min_score")),
        label_min_scores=MappingProxyType(
            parse_label_min_scores(read("label_min_scores") or ())
        ),
        label_allow_list=_tuple(read("label_allow_list")),
        enabled_types=_tuple(read("enabled_types")),
        excluded_paths=_tuple(read("excluded_paths")),
        processing_mode=read("processing_mode"),
        derivative_longest_edge=int(read("derivative_longest_edge")),
        max_labels_per_item=int(read("max_labels_per_item")),
        max_label_length=int(read("max_label_length")),
    )
