"""Notifications: categories set where they are created, the list as a filterable, exportable table, and marking
one or all read (only the user's own)."""

import io

import openpyxl
import pytest

from accounts import services
from accounts.models import Notification
from tests.factories import member_of

Category = Notification.Category


@pytest.fixture
def mixed(esp_org, esp2_org, esp_user):
    """Two unread and one read notification of the ESP, one addressed to a colleague, one of another ESP."""
    colleague = member_of(esp_org, email="colleague@esp.example")
    own = [
        services.notify_organisation(
            organisation=esp_org, category=Category.TRADING, title="Contract C-1: you sold"
        ),
        services.notify_organisation(organisation=esp_org, category=Category.GRID, title="Asset approved"),
        services.notify_organisation(
            organisation=esp_org, category=Category.SETTLEMENT, title="Statement ready"
        ),
    ]
    Notification.objects.filter(pk=own[2].pk).update(read_at="2026-01-01T00:00:00Z")
    colleagues = Notification.objects.create(
        organisation=esp_org, user=colleague, category=Category.TRADING, title="For the colleague only"
    )
    foreign = services.notify_organisation(
        organisation=esp2_org, category=Category.TRADING, title="Other ESP"
    )
    return {"own": own, "colleague": colleagues, "foreign": foreign}


def unread(pk: int) -> bool:
    return Notification.objects.get(pk=pk).read_at is None


@pytest.mark.django_db
def test_mark_all_read_marks_only_the_actors_unread_notifications(actor_esp, mixed):
    assert services.notification_mark_all_read(actor=actor_esp) == 2
    assert not any(unread(n.pk) for n in mixed["own"])
    assert unread(mixed["colleague"].pk) and unread(mixed["foreign"].pk)
    assert services.notification_mark_all_read(actor=actor_esp) == 0


@pytest.mark.django_db
def test_mark_read_ignores_another_organisations_ids(actor_esp, mixed):
    ids = [mixed["own"][0].pk, mixed["foreign"].pk, mixed["colleague"].pk]
    assert services.notification_mark_read(actor=actor_esp, notification_ids=ids) == 1
    assert unread(mixed["foreign"].pk) and unread(mixed["colleague"].pk) and unread(mixed["own"][1].pk)


@pytest.mark.django_db
def test_notify_sets_the_category_and_requires_one(esp_org):

    items = [{"organisation_id": esp_org.pk, "title": "A"}, {"organisation_id": esp_org.pk, "title": "B"}]
    made = services.notify_organisations(items, category=Category.SETTLEMENT)
    assert {n.category for n in Notification.objects.filter(pk__in=[n.pk for n in made])} == {"settlement"}
    with pytest.raises(TypeError):
        services.notify_organisation(organisation=esp_org, title="no category")


@pytest.mark.django_db
def test_list_shows_own_notifications_without_marking_them_read(client, esp_user, mixed):
    client.force_login(esp_user)
    response = client.get("/organisation/notifications/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Contract C-1: you sold" in page and "Asset approved" in page and "Statement ready" in page
    assert "Other ESP" not in page and "For the colleague only" not in page
    assert unread(mixed["own"][0].pk)  # reading the list is not reading every notification
    assert 'data-testid="mark-all-read"' in page and "Mark all as read (2)" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("category=grid", {"Asset approved"}),
        ("read=unread", {"Contract C-1: you sold", "Asset approved"}),
        ("read=read", {"Statement ready"}),
        ("category=trading&read=unread", {"Contract C-1: you sold"}),
    ],
)
def test_list_filters_by_category_and_read_state(client, esp_user, mixed, query, titles):
    client.force_login(esp_user)
    table = client.get(f"/organisation/notifications/?{query}").context["table"]
    assert {row.record.title for row in table.rows} == titles


@pytest.mark.django_db
def test_list_with_an_unknown_category_shows_the_filter_error(client, esp_user, mixed):
    client.force_login(esp_user)
    response = client.get("/organisation/notifications/?category=bogus")
    assert response.status_code == 400
    assert response.context["filter"].errors["category"]
    assert "Category: Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_list_sorts_and_paginates(client, esp_user, esp_org):
    for n in range(30):
        services.notify_organisation(organisation=esp_org, category=Category.TRADING, title=f"N{n:02d}")
    client.force_login(esp_user)
    first = client.get("/organisation/notifications/?sort=title").context["table"]
    assert [row.record.title for row in first.page.object_list][:2] == ["N00", "N01"]
    assert first.paginator.num_pages == 2
    second = client.get("/organisation/notifications/?sort=title&page=2").context["table"]
    assert [row.record.title for row in second.page.object_list] == [f"N{n}" for n in range(25, 30)]


@pytest.mark.django_db
def test_mark_all_as_read_post_marks_own_and_says_how_many(client, esp_user, mixed):
    client.force_login(esp_user)
    response = client.post("/organisation/notifications/", follow=True)
    assert response.redirect_chain[-1][0] == "/organisation/notifications/"
    assert [str(m) for m in response.context["messages"]] == ["2 notifications marked as read."]
    assert not any(unread(n.pk) for n in mixed["own"])
    assert unread(mixed["colleague"].pk) and unread(mixed["foreign"].pk)


@pytest.mark.django_db
def test_mark_one_read_post_ignores_another_organisations_notification(client, esp_user, mixed):
    client.force_login(esp_user)
    client.post("/organisation/notifications/", {"notification": [mixed["own"][1].pk, mixed["foreign"].pk]})
    assert not unread(mixed["own"][1].pk)
    assert unread(mixed["own"][0].pk) and unread(mixed["foreign"].pk)


@pytest.mark.django_db
def test_anonymous_cannot_mark_notifications_read(client, mixed):
    response = client.post("/organisation/notifications/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert unread(mixed["own"][0].pk)


@pytest.mark.django_db
def test_export_csv_has_the_filtered_own_notifications_with_category_and_details(
    client, esp_user, esp_org, mixed
):
    services.notify_organisation(
        organisation=esp_org, category=Category.GRID, title="Zone", body="Feeder 3 added"
    )
    client.force_login(esp_user)
    response = client.get("/organisation/notifications/?category=grid&_export=csv")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "When,Category,Notification,Details,Read"
    assert len(lines) == 3
    assert any("Grid and assets,Zone,Feeder 3 added,unread" in line for line in lines)
    assert "Other ESP" not in response.content.decode()


@pytest.mark.django_db
def test_export_xlsx_lists_every_own_notification(client, esp_user, mixed):
    client.force_login(esp_user)
    response = client.get("/organisation/notifications/?_export=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    titles = {row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert titles == {"Contract C-1: you sold", "Asset approved", "Statement ready"}


@pytest.mark.django_db
def test_list_page_query_count_does_not_grow_with_notifications(client, esp_user, esp_org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(esp_user)
    services.notify_organisation(organisation=esp_org, category=Category.GRID, title="one")
    client.get("/organisation/notifications/")  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get("/organisation/notifications/")
    for n in range(20):
        services.notify_organisation(organisation=esp_org, category=Category.TRADING, title=f"n{n}")
    with CaptureQueriesContext(connection) as many:
        client.get("/organisation/notifications/")
    assert len(many) == len(one) <= 12


@pytest.mark.django_db(transaction=True)
def test_migration_categorises_existing_notifications_from_their_link(esp_org):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([target])
        return executor.loader.project_state([target]).apps

    try:
        old = migrate(("accounts", "0002_audit_events_append_only")).get_model("accounts", "Notification")
        links = {
            "Contract": "/trading/contracts/1/",
            "Prequalification": "/grid/assets/1/",
            "Statement": "/settlement/statements/1/",
            "New zone": "/admin/trading/market/",
            "Dispute on C-1 reopened": "",
            "Your organisation was approved": "/",
        }
        for title, link in links.items():
            old.objects.create(organisation_id=esp_org.pk, title=title, link=link)
        new = migrate(("accounts", "0003_notification_category")).get_model("accounts", "Notification")
        assert dict(new.objects.values_list("title", "category")) == {
            "Contract": "trading",
            "Prequalification": "grid",
            "Statement": "settlement",
            "New zone": "grid",
            "Dispute on C-1 reopened": "settlement",
            "Your organisation was approved": "account",
        }
    finally:
        MigrationExecutor(connection).loader.build_graph()
        migrate(
            max(
                key for key in MigrationExecutor(connection).loader.graph.leaf_nodes() if key[0] == "accounts"
            )
        )
