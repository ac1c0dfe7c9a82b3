"""The WeChat sandbox: a local stand-in for Tencent's WeCom, Official Account and WeChat
Pay servers, with the same protocols (tokens, cursors, errcodes, encrypted callbacks with
retries, signed Pay notifications), simulated people and armable faults.

It imports nothing of Django or of the app but `weiying.wechat.crypto`. Start it with
`weiying sandbox`, or in tests mount `create_app(SandboxState(...))` on an httpx
WSGITransport.
"""

from weiying.wechat.sandbox.app import create_app, serve_in_thread
from weiying.wechat.sandbox.state import SandboxConfig, SandboxState

__all__ = ["SandboxConfig", "SandboxState", "create_app", "serve_in_thread"]
