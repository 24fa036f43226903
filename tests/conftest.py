"""The named cast every test uses (Healthchecks/Zulip style).

fmo_user / dso_user / dso2_user / tso_user / esp_user / esp2_user / stranger_user, each a member
(and admin) of an approved organisation with that role; `*_org` fixtures give the organisations and
`actor_*` fixtures the service-layer Actor.
"""

import pytest
from rest_framework.test import APIClient

from accounts.context import Actor
from accounts.models import Role
from tests.factories import OrganisationFactory, member_of


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    """Tasks run inline in ordinary tests; tests marked `worker` start a real worker instead."""
    from flexmarket.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked `postgres` exercise PostgreSQL behaviour (row locks, triggers) and are skipped on SQLite."""
    from django.db import connection

    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")


@pytest.fixture(scope="session")
def _empty_static_root(tmp_path_factory):
    return tmp_path_factory.mktemp("staticfiles")


@pytest.fixture(autouse=True)
def _uncollected_static(settings, _empty_static_root):
    """Pages name static files as a fresh checkout does (plain names, served from the packages), whether or not
    the demo ran collectstatic into var/ before the tests (README: the demo command, then the tests)."""
    settings.STATIC_ROOT = _empty_static_root


@pytest.fixture(autouse=True)
def _offline_maps(settings):
    """No internet in tests: maps run in the documented offline mode (empty MAP_TILE_URL, the static base)."""
    settings.MAP_TILE_URL = ""


@pytest.fixture(autouse=True)
def _fast_tests(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "10000/minute", "user": "100000/minute"},
    }


def _org(name: str, code: str, *roles: str):
    return OrganisationFactory(legal_name=name, code=code, roles=list(roles))


@pytest.fixture
def fmo_org(db):
    return _org("Flex Market Operator B.V.", "8700000000001", Role.FMO)


@pytest.fixture
def dso_org(db):
    return _org("Stedin Netbeheer B.V.", "8700000000002", Role.DSO)


@pytest.fixture
def dso2_org(db):
    return _org("Enexis Netbeheer B.V.", "8700000000003", Role.DSO)


@pytest.fixture
def tso_org(db):
    return _org("TenneT TSO B.V.", "8700000000004", Role.TSO)


@pytest.fixture
def esp_org(db):
    return _org("Flexy Aggregation B.V.", "8700000000005", Role.ESP)


@pytest.fixture
def esp2_org(db):
    return _org("Voltshift Energy B.V.", "8700000000006", Role.ESP)


@pytest.fixture
def stranger_org(db):
    return _org("Stranger Energy B.V.", "8700000000007", Role.ESP)


@pytest.fixture
def fmo_user(fmo_org):
    user = member_of(fmo_org, email="operator@fmo.example", is_staff=True, is_superuser=True)
    from allauth.mfa.models import Authenticator

    # FMO staff must have TOTP; tests get a registered authenticator so pages are not redirected.
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})
    return user


@pytest.fixture
def dso_user(dso_org):
    return member_of(dso_org, email="planner@dso.example")


@pytest.fixture
def dso2_user(dso2_org):
    return member_of(dso2_org, email="planner@dso2.example")


@pytest.fixture
def tso_user(tso_org):
    return member_of(tso_org, email="operator@tso.example")


@pytest.fixture
def esp_user(esp_org):
    return member_of(esp_org, email="trader@esp.example")


@pytest.fixture
def esp2_user(esp2_org):
    return member_of(esp2_org, email="trader@esp2.example")


@pytest.fixture
def stranger_user(stranger_org):
    return member_of(stranger_org, email="someone@stranger.example")


@pytest.fixture
def actor_fmo(fmo_user, fmo_org):
    return Actor(user=fmo_user, organisation=fmo_org)


@pytest.fixture
def actor_dso(dso_user, dso_org):
    return Actor(user=dso_user, organisation=dso_org)


@pytest.fixture
def actor_dso2(dso2_user, dso2_org):
    return Actor(user=dso2_user, organisation=dso2_org)


@pytest.fixture
def actor_tso(tso_user, tso_org):
    return Actor(user=tso_user, organisation=tso_org)


@pytest.fixture
def actor_esp(esp_user, esp_org):
    return Actor(user=esp_user, organisation=esp_org)


@pytest.fixture
def actor_esp2(esp2_user, esp2_org):
    return Actor(user=esp2_user, organisation=esp2_org)


@pytest.fixture
def actor_stranger(stranger_user, stranger_org):
    return Actor(user=stranger_user, organisation=stranger_org)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for():
    """`client_for(user)`: an APIClient logged in as that user (session auth)."""

    def make(user):
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def broker_down():
    """Celery sends to a port where nothing listens (as when Redis is down); tasks are not run inline."""
    from flexmarket.celery import app

    def reset_pools():  # kombu keeps pools per broker URL; the app re-fetches them
        app._pool = None
        app.amqp._producer_pool = None

    url = app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    reset_pools()
    yield
    app.conf.broker_url = url
    reset_pools()


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on the test database; tasks are sent, not run inline."""
    from celery.result import allow_join_result

    from flexmarket.celery import app
    from tests.worker import start_worker, stop_worker

    app.conf.task_always_eager = False
    process = start_worker()
    # Eager tasks run in parallel threads by earlier tests can leave Celery's process-wide "joining would block"
    # flag set (its save/restore is not thread-safe); the test process is not a worker, so joins are allowed.
    with allow_join_result():
        yield process
    stop_worker(process)


from tests.settlement.fixtures import settled_setup, world  # noqa: E402, F401  (shared by settlement and browser tests)
