"""Per-item failure isolation for periodic tasks: one bad row must not stop the work for everyone else."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction

logger = logging.getLogger("flexmarket.tasks")


@dataclass
class Outcome:
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


def target_label(target) -> str:
    meta = getattr(target, "_meta", None)
    if meta is not None:
        return f"{meta.label_lower}#{target.pk}"
    return str(target)[:200]


@contextmanager
def isolated(task: str, target) -> Iterator[Outcome]:
    """Run one item in a savepoint. An exception rolls back that item only, is logged and recorded as a
    TaskFailure (admin: Task failures), and is not raised: the task goes on with the next item."""
    from flexmarket.models import TaskFailure

    outcome = Outcome()
    try:
        with transaction.atomic():
            yield outcome
    except Exception as error:
        outcome.error = f"{type(error).__name__}: {error}"[:2000]
        logger.exception("%s failed for %s", task, target_label(target))
        TaskFailure.objects.create(
            task=task,
            target=target_label(target),
            target_id=getattr(target, "pk", None),
            error=outcome.error,
            traceback=traceback.format_exc()[-20000:],
        )
