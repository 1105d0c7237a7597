"""QR codes that open a hosted form, with a campaign and a channel filled in (a poster at
a trade show, a flyer): `form_url` builds the address, `qr_png` / `qr_svg` draw it."""

from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

# Medium error correction survives a smudged or partly covered print; 10 px per module
# and the standard 4-module quiet zone scan well from a phone at arm's length.
BOX_SIZE = 10
BORDER = 4


def form_url(
    base_url: str,
    form_id: str,
    *,
    campaign: str | None = None,
    channel: str | None = None,
    lang: str | None = None,
) -> str:
    """The hosted form's address under `base_url` (leadflow's public URL), with the
    campaign, channel and language the page will fill in."""
    query = {
        name: value
        for name, value in (("campaign", campaign), ("channel", channel), ("lang", lang))
        if value
    }
    url = f"{base_url.rstrip('/')}/f/{quote(form_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


def _code(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_png(url: str) -> bytes:
    """A PNG of the QR code of `url`."""
    image = _code(url).make_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(url: str) -> bytes:
    """An SVG (one path) of the QR code of `url`."""
    image = _code(url).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    data: bytes = image.to_string(encoding="unicode").encode()
    return data
