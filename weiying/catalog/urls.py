"""HTML pages of the operations layer, mounted at /catalog/ under the "catalog" namespace. Each
area keeps its own `urlpatterns` in its module (the catalogue's in views.py); add an area's
module to the list below."""

import importlib

app_name = "catalog"
urlpatterns: list = []

for _module in ["weiying.catalog.views", "weiying.catalog.views_delivery"]:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        continue
    urlpatterns += _mod.urlpatterns
