from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organisations and users"

    def ready(self):
        # The admin has discovered every app's admin module by now (it is installed before this app).
        from accounts.admin_audit import audit_every_admin

        audit_every_admin()
