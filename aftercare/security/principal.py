"""Who is calling: the subject, how they proved it, their roles, scopes and permissions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models.roles import Permission, Role, permissions_of


class PrincipalKind(StrEnum):
    """How the caller authenticated."""

    API_KEY = "api_key"
    JWT = "jwt"
    DEV = "dev"
    CODEC_UI = "codec_ui"  # the development Temporal UI, through its codec endpoint URL
    PATIENT_LINK = "patient_link"  # a patient, through a signed link of theirs (patient pages)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `key_id` is the API key's id (never its secret)."""

    kind: PrincipalKind
    subject: str
    roles: frozenset[Role]
    scopes: frozenset[str] = frozenset()
    key_id: str | None = None
    # The facilities whose subtrees the caller reaches; empty: the whole group (as before facilities).
    facilities: frozenset[str] = frozenset()
    permissions: frozenset[Permission] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", permissions_of(self.roles, self.scopes))

    def can(self, permission: Permission) -> bool:
        """True when the caller holds `permission`."""
        return permission in self.permissions
