from celery import shared_task

from settlement import services
from settlement.selectors import contract_get_any


@shared_task(name="settlement.verification_run_contract", acks_late=True)
def verification_run_contract_task(contract_id: int) -> str:
    """Thin and idempotent: unchanged inputs leave the stored verification as it is."""
    return services.verification_run(contract=contract_get_any(pk=contract_id)).state


@shared_task(name="settlement.verifications_run_due")
def verifications_run_due_task() -> int:
    return services.verifications_run_due()
