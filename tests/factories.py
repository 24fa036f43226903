"""factory-boy factories for accounts. Each app's factories live in tests/<app>/factories.py."""

import factory

from accounts.models import Membership, Organisation, OrganisationRole, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        skip_postgeneration_save = True

    legal_name = factory.Sequence(lambda n: f"Organisation {n} B.V.")
    country = "NL"
    code = factory.Sequence(lambda n: f"86{n:011d}")
    status = Organisation.Status.APPROVED

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        if create and extracted:
            for role in extracted:
                OrganisationRole.objects.get_or_create(organisation=obj, role=role)
            obj.requested_roles = list(extracted)
            obj.save(update_fields=["requested_roles"])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    is_admin = True


def member_of(organisation: Organisation, *, is_admin: bool = True, **user_kwargs) -> User:
    """A user who is a member of the organisation."""
    from allauth.account.models import EmailAddress

    user = UserFactory(**user_kwargs)
    Membership.objects.create(user=user, organisation=organisation, is_admin=is_admin)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user
