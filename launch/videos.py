"""The video copies a serving process keeps: one store for the edge's copies and the control
plane's purges, and the edge's delivery of them on signed links."""

from __future__ import annotations

import logging
import os

from launch.settings import Settings
from proxy.core.video_assets import AssetStore
from proxy.videos.delivery import VideoDelivery
from proxy.videos.links import VideoLinks
from proxy.videos.links import derive_secret as derive_link_secret
from proxy.videos.stores import open_store

log = logging.getLogger("nextapi")


def video_store(settings: Settings) -> AssetStore | None:
    """One store for the edge's copies and the control plane's purges: an edge apart keeps
    none unless given one the control plane shares."""
    default = None if settings.role == "edge" else settings.data_dir / "videos"
    try:
        return open_store(settings.video_store, default, os.environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def video_delivery(settings: Settings, store: AssetStore) -> VideoDelivery:
    if not settings.public_url:
        log.warning("no public_url: videos are not copied, the upstream's 24-hour links pass on")
    material = os.environ.get("NEXTAPI_VIDEO_LINK_SECRET") or os.environ["NEXTAPI_UPSTREAM_KEY"]
    return VideoDelivery(
        store,
        VideoLinks(derive_link_secret(material)),
        link_ttl=settings.video_link_hours * 3600,
        max_bytes=settings.video_max_bytes,
    )
