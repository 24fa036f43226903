"""Demo data for this app, called by `manage.py demo` with the cast of organisations and users."""


def seed(cast) -> None:
    return None
