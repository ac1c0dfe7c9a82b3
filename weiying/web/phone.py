from django.http import HttpRequest

_PHONE_MARKERS = ("wxwork", "micromessenger", "iphone", "android", "mobile")


def is_phone(request: HttpRequest) -> bool:
    """A phone or the WeCom in-app browser; `?desk=1` forces the desktop pages."""
    if request.GET.get("desk"):
        return False
    agent = request.headers.get("User-Agent", "").lower()
    return any(marker in agent for marker in _PHONE_MARKERS)
