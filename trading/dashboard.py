"""Dashboard panels this app adds to the landing page."""


def panels(request, actor) -> list[dict]:
    return []
