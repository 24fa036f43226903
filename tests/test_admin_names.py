"""The admin names every model in plain English: no "Prognosiss" or "Baseline accuracys"."""

import re

from django.apps import apps


def test_plural_names_read_as_english():
    plurals = {str(model._meta.verbose_name_plural) for model in apps.get_models()}
    assert "prognoses" in plurals and "baseline accuracy scores" in plurals
    # Django's default plural adds "s": wrong after "is" (analysis) and after a consonant + "y" (accuracy).
    assert not [name for name in plurals if re.search(r"(iss|ss s|[^aeiou]ys)$", name)]
