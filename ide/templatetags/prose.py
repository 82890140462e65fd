"""``{{ text|inline }}``: the reference's prose (backticks for code, stars for
emphasis, as in docs/lua-api.md) as safe HTML: escaped first, then marked up."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CODE = re.compile(r"`([^`]+)`")
_EMPHASIS = re.compile(r"\*([^*<>\s][^*<>]*)\*")


@register.filter
def inline(text: str) -> SafeString:
    html = _CODE.sub(r"<code>\1</code>", escape(text))
    return mark_safe(_EMPHASIS.sub(r"<em>\1</em>", html))  # noqa: S308 - escaped above
