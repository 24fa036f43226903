"""REST endpoints: /me/, organisations, API keys."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, Membership, Organisation
from accounts.permissions import request_actor
from accounts.selectors import api_keys_get_visible, members_get_visible, organisation_get_visible_list
from accounts.services import api_key_create, api_key_revoke
from flexmarket.api.viewsets import OrganisationScopedViewSet


class OrganisationSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Organisation
        fields = ["id", "legal_name", "country", "code", "status", "roles"]

    def get_roles(self, obj) -> list[str]:
        return sorted(obj.role_codes)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.display_name")

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "is_admin", "created_at"]


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    organisation = OrganisationSerializer(allow_null=True)
    acting_on_behalf = serializers.BooleanField()
    api_key = serializers.CharField(allow_null=True)


class MeView(APIView):
    """Who am I: the user, the organisation I act for, and how I authenticated."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        actor = request_actor(request)
        data = {
            "email": request.user.email,
            "name": request.user.display_name,
            "organisation": actor.organisation,
            "acting_on_behalf": actor.on_behalf,
            "api_key": request.auth.prefix if isinstance(request.auth, ApiKey) else None,
        }
        return Response(MeSerializer(data).data)


class OrganisationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    serializer_class = OrganisationSerializer
    model = Organisation
    filterset_fields = ["status", "country"]
    ordering_fields = ["legal_name", "created_at"]

    def get_visible_queryset(self, actor):
        return organisation_get_visible_list(actor=actor)

    @extend_schema(responses=MembershipSerializer(many=True))
    @action(detail=True)
    def members(self, request, pk=None):
        organisation = self.get_object()
        members = members_get_visible(actor=self.get_actor(), organisation=organisation)
        return Response(MembershipSerializer(members, many=True).data)


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret, shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Your organisation's API keys. Creating returns the secret once; DELETE revokes."""

    serializer_class = ApiKeySerializer
    model = ApiKey

    def get_visible_queryset(self, actor):
        return api_keys_get_visible(actor=actor)

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = api_key_create(
            actor=self.get_actor(),
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data.get("expires_at"),
        )
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ApiKeySerializer})
    def destroy(self, request, pk=None):
        key = api_key_revoke(actor=self.get_actor(), api_key=self.get_object())
        return Response(ApiKeySerializer(key).data)
