"""The Celery application. Tasks live in each app's tasks.py and stay thin (they call services)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")

app = Celery("flexmarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
