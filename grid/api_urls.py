from rest_framework.routers import SimpleRouter

from grid.api import (
    AssetViewSet,
    ForecastRunViewSet,
    ForecastUploadViewSet,
    GridLocationViewSet,
    NetworkModelLoadViewSet,
    NetworkModelViewSet,
    PortfolioViewSet,
    PowerFlowRunViewSet,
)

router = SimpleRouter()
router.register("grid-locations", GridLocationViewSet, basename="grid-location")
router.register("assets", AssetViewSet, basename="asset")
router.register("portfolios", PortfolioViewSet, basename="portfolio")
router.register("network-models", NetworkModelViewSet, basename="network-model")
router.register("network-model-loads", NetworkModelLoadViewSet, basename="network-model-load")
router.register("power-flow-runs", PowerFlowRunViewSet, basename="power-flow-run")
router.register("forecast-runs", ForecastRunViewSet, basename="forecast-run")
router.register("forecast-uploads", ForecastUploadViewSet, basename="forecast-upload")

urlpatterns = router.urls
