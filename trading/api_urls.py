from django.urls import path
from rest_framework.routers import SimpleRouter

from trading.api import (
    ActivationViewSet,
    AgreementViewSet,
    ContractViewSet,
    FlexOfferViewSet,
    FlexRequestViewSet,
    MarketViewSet,
    OpenDataView,
    PricesView,
    ProductViewSet,
    ReplayViewSet,
    SessionViewSet,
)

router = SimpleRouter()
router.register("markets", MarketViewSet, basename="market")
router.register("products", ProductViewSet, basename="product")
router.register("sessions", SessionViewSet, basename="session")
router.register("flex-requests", FlexRequestViewSet, basename="flex-request")
router.register("flex-offers", FlexOfferViewSet, basename="flex-offer")
router.register("contracts", ContractViewSet, basename="contract")
router.register("activations", ActivationViewSet, basename="activation")
router.register("availability-agreements", AgreementViewSet, basename="availability-agreement")
router.register("replays", ReplayViewSet, basename="replay")

urlpatterns = [
    path("open-data/", OpenDataView.as_view(), name="open-data"),
    path("prices/", PricesView.as_view(), name="prices"),
    *router.urls,
]
