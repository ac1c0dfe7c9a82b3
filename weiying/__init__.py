"""微营 Weiying: marketing (sales) management for companies that sell through WeChat."""

__version__ = "0.1.0"
