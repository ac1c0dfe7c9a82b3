"""Settings for the test suite: tasks run in-process, passwords hash fast."""

from weiying.conf.settings import *  # noqa: F403
from weiying.conf.settings import HUEY

HUEY = {**HUEY, "immediate": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOG_JSON = False
LANGUAGE_CODE = "zh-hans"
