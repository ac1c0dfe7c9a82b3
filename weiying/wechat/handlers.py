"""The table of inbox handlers: each module below registers its own with
`@inbox.handles(source, kind)`. A kind nobody handles is acknowledged and kept."""

from __future__ import annotations

import importlib

# The WeChat features that handle callbacks; a module that is not there yet is skipped.
FEATURES = [
    "weiying.wechat.directory",
    "weiying.wechat.contacts",
    "weiying.wechat.channels",
    "weiying.wechat.oa",
    "weiying.wechat.pay",
    "weiying.wechat.departure",
]

for _module in FEATURES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
