"""Which asset store a `video_store` setting names: the local directory or an S3-compatible
bucket. Apart from both stores so that neither needs to know the other."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from proxy.core.video_assets import AssetStore, LocalAssetStore
from proxy.videos.s3 import S3AssetStore


def open_store(
    spec: str, default_dir: Path | None, environ: Mapping[str, str]
) -> AssetStore | None:
    """The store a `video_store` setting names: "" the default directory (None: no store),
    "off" none, `s3://…` a bucket, anything else a directory."""
    spec = spec.strip()
    if spec == "off" or (not spec and default_dir is None):
        return None
    if not spec:
        assert default_dir is not None
        return LocalAssetStore(default_dir)
    if spec.startswith("s3://"):
        return S3AssetStore.from_url(spec, environ)
    if "://" in spec:
        raise ValueError(f"video_store: unknown kind of store: {spec.split('://')[0]}://")
    return LocalAssetStore(Path(spec))
