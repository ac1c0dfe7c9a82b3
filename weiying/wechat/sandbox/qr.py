"""QR images as SVG (the `qrcode` package's SVG output needs no Pillow)."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from flask import Response


def svg(data: str) -> bytes:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10,
                        border=2)
    return bytes(image.to_string())


def svg_response(data: str) -> Response:
    response = Response(svg(data), content_type="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response
