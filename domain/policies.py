"""The Policy aggregate: a named approval policy whose every change is a new version.

A running chain keeps the version it started with, so old versions are never changed.
"""

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFound


def policy_id(name: str) -> UUID:
    # One aggregate per name: two creations of the same name collide in the store.
    return uuid5(NAMESPACE_URL, f"signoff:policy:{name}")


class Policy(Aggregate):
    @event("Created")
    def __init__(self, name: str, created_by: str) -> None:
        self.name = name
        self.created_by = created_by
        self.versions: list[dict[str, Any]] = []

    @classmethod
    def create(cls, name: str, created_by: str) -> "Policy":
        return cls._create(cls.Created, id=policy_id(name), name=name, created_by=created_by)

    def publish(self, spec: dict[str, Any], actor: str) -> bool:
        """Publish `spec` as a new version; publishing the latest version again changes nothing."""
        if self.versions and self.versions[-1]["spec"] == spec:
            return False
        self._publish(version=len(self.versions) + 1, spec=spec, actor=actor)
        return True

    @event("VersionPublished")
    def _publish(self, version: int, spec: dict[str, Any], actor: str) -> None:
        self.versions.append({"version": version, "spec": spec, "published_by": actor})

    def get_version(self, version: int | None = None) -> dict[str, Any]:
        if version is None:
            return self.versions[-1]
        if not 1 <= version <= len(self.versions):
            raise NotFound(f"policy {self.name!r} has no version {version}")
        return self.versions[version - 1]
