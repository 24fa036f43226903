"""Static files: compressed (gzip) copies with content-hashed names, so browsers cache them for a year.

`manage.py collectstatic` (run by the demo before it serves, and by every deployment, docs/operations.md) writes
each file under its hashed name with a .gz beside it, and a manifest. URLs then name the hashed file, which
WhiteNoise serves compressed with `Cache-Control: max-age=315360000, immutable`. Without a collected manifest (the
test suite, a fresh checkout running `runserver`), or for a file added after the last collectstatic, URLs fall
back to the plain name, served from the installed packages' folders as before, instead of failing the page.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def url(self, name, force=False):
        clean = name.split("?", 1)[0].split("#", 1)[0]
        if self.hashed_files.get(self.hash_key(clean)) is None:
            return FileSystemStorage.url(self, name)
        # In DEBUG Django names the plain file; FLEXMARKET_STATIC_HASHED_URLS (the demo sets it) names the hashed
        # one there too, so a demo served by runserver gets the same caching as production.
        return super().url(name, force=force or settings.FLEXMARKET_STATIC_HASHED_URLS)
