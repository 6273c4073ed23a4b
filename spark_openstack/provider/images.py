"""Glance (and Cinder leftovers): snapshots for create-image, image properties,
the project's images, and volumes of clusters made by earlier versions.
"""
from __future__ import annotations

from typing import Any, Iterable

from .. import errors
from ..polling import poll
from .sdk_errors import translate_errors

class ImageMixin:
    """Images and volumes (part of ``OpenStackProvider``)."""

    conn: Any

    # ---------------------------------------------------------------- images (create-image)
    @translate_errors
    def snapshot_server(self, *, server_id: str, name: str,
                        metadata: dict[str, str] | None = None) -> str:
        """Snapshot a (stopped) server into an image; returns the image id."""
        image = self.conn.compute.create_server_image(server_id, name, metadata=metadata,
                                                      wait=False)
        return image.id

    @translate_errors
    def wait_for_image(self, *, image_id: str, timeout: float):
        """Poll until the image is active; a killed/deleted image raises ``CloudError``."""
        last = {"status": "unknown"}

        def active():
            image = self.conn.image.get_image(image_id)
            last["status"] = image.status
            if image.status in ("killed", "deleted", "deactivated"):
                raise errors.CloudError(f"image {image_id} became {image.status}")
            return image if image.status == "active" else None
        return poll(active, timeout=timeout, what=f"image {image_id} active", interval=2,
                    max_interval=5, describe=lambda: f"status {last['status']}")

    @translate_errors
    def set_image_properties(self, *, image_id: str, properties: dict[str, str]) -> None:
        self.conn.image.update_image(image_id, **properties)

    @translate_errors
    def list_images(self) -> list:
        """The images the project owns, whatever their status (snapshots being saved too)."""
        return list(self.conn.image.images(owner=self.conn.current_project_id))

    @translate_errors
    def delete_image(self, image_id: str) -> None:
        self.conn.image.delete_image(image_id, ignore_missing=True)

    # ---------------------------------------------------------------- volumes
    @translate_errors
    def delete_volumes(self, volume_ids: Iterable[str], *, timeout: float = 300) -> None:
        """Volumes of clusters made by earlier versions (``--volume-size``). Nova deletes
        them itself (delete_on_termination), so wait for that instead of racing it: a
        volume still attached or being deleted is left to Nova, and 404 means done."""
        from openstack import exceptions as sdk
        pending = set(volume_ids)

        def gone():
            for vid in list(pending):
                try:
                    volume = self.conn.block_storage.get_volume(vid)
                except sdk.NotFoundException:
                    pending.discard(vid)
                    continue
                if volume.status in ("available", "error"):
                    self.conn.block_storage.delete_volume(vid, ignore_missing=True)
            return True if not pending else None
        poll(gone, timeout=timeout, what="volume deletion", interval=2, max_interval=5,
             describe=lambda: f"{len(pending)} volume(s) left: {', '.join(sorted(pending))}")

