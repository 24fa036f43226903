from rest_framework.routers import SimpleRouter

from settlement.api import (
    DisputeViewSet,
    MeterReadingViewSet,
    PeriodViewSet,
    PrognosisViewSet,
    SettlementViewSet,
    TemperatureViewSet,
    VerificationViewSet,
)

router = SimpleRouter()
router.register("meter-readings", MeterReadingViewSet, basename="meter-reading")
router.register("prognoses", PrognosisViewSet, basename="prognosis")
router.register("temperatures", TemperatureViewSet, basename="temperature")
router.register("verifications", VerificationViewSet, basename="verification")
router.register("settlements", SettlementViewSet, basename="settlement")
router.register("settlement-periods", PeriodViewSet, basename="settlement-period")
router.register("disputes", DisputeViewSet, basename="dispute")

urlpatterns = router.urls
