"""Translatable texts for code that must not import Flask (models, pure domain modules, operations).

The msgids are Chinese (the product's first language). Code below the views marks a text with
``N_`` (a no-op the extractor knows) or builds a ``Msg`` — a Chinese text with named ``{}``
parameters kept apart — so that ``str()`` stays the Chinese text for the CLI, mail and the ledger,
while the web boundary (``tracker.babel.translate``) looks the msgid up in the user's catalogue and
fills the parameters in afterwards. See docs/I18N.md.
"""

from __future__ import annotations

from typing import Any

# The languages of the UI: Chinese first (the default), English second.
LOCALES = ("zh_Hans_CN", "en")
LOCALE_NAMES = {"zh_Hans_CN": "中文", "en": "English"}  # each in its own language
LOCALE_TAGS = {"zh_Hans_CN": "zh-CN", "en": "en"}  # as HTML writes them (lang="…")


def N_(msgid: str) -> str:
    """Mark a text for extraction; it is translated where it is shown (views, templates)."""
    return msgid


class Msg(str):
    """A Chinese message with named ``{}`` parameters. As a ``str`` it is the filled-in Chinese text;
    ``msgid`` and ``params`` let the web boundary translate it first. A parameter that is itself a
    ``Msg`` (a state or action label, say) is translated too; other parameters are data."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Msg:
        text = super().__new__(cls, msgid.format(**params) if params else msgid)
        text.msgid = msgid
        text.params = params
        return text

    def __reduce__(self):  # pickles (and copies) with its parameters
        return (_rebuild, (self.msgid, self.params))


def _rebuild(msgid: str, params: dict[str, Any]) -> Msg:
    return Msg(msgid, **params)


# Vocabulary that lives as reference data in the database (rows the migrations create), listed so
# the extractor sees it; pages translate these names where they show them.
REFERENCE_VOCABULARY = (
    # the escalation ladder (督办措施), DESIGN §6
    N_("预警"), N_("函告"), N_("通报"), N_("督办"), N_("挂牌督办"), N_("约谈"), N_("曝光"), N_("区域限批"),
    N_("调查问责"),
)
