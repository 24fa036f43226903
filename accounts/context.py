"""Who is acting: the user, the organisation they act for, and whether FMO staff act on its behalf."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import Organisation, User

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("current_request_id", default="")


@dataclass(frozen=True)
class Actor:
    """Passed to every service. `operator` is the FMO organisation when its staff act on behalf of `organisation`."""

    user: User | None
    organisation: Organisation | None
    operator: Organisation | None = None

    @property
    def is_fmo(self) -> bool:
        return self.organisation is not None and self.organisation.is_fmo

    @property
    def on_behalf(self) -> bool:
        return self.operator is not None

    def has_role(self, *roles: str) -> bool:
        return self.organisation is not None and self.organisation.has_role(*roles)


SYSTEM = Actor(user=None, organisation=None)
