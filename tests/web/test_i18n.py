import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import weiying

LC_MESSAGES = Path(weiying.__file__).parent / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"

# %(name)s, %(m)02d, %s, %d and the escaped %% of python-format strings.
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
SIGN_IN_MESSAGE_ZH = "请先登录，或以 'Authorization: Bearer …' 的形式发送有效的 API 令牌。"


def _parse_po(path: Path) -> list[dict[str, Any]]:
    """A small .po reader: entries with msgctxt, msgid, msgid_plural, msgstr[n] and flags.
    Obsolete (#~) entries are returned with obsolete=True."""
    entries: list[dict[str, Any]] = []
    entry: dict[str, Any] = {}
    key = ""

    def close() -> None:
        nonlocal entry
        if "msgid" in entry:
            entries.append(entry)
        entry = {}

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
        if not line:
            close()
            continue
        if line.startswith("#,"):
            if "msgid" in entry:
                close()
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            entry[key] += ast.literal_eval(line)
            continue
        keyword, _, value = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and "msgid" in entry and key.startswith("msgstr"):
            close()
        key = keyword
        entry[key] = ast.literal_eval(value)
        entry["obsolete"] = obsolete
    close()
    return entries


@pytest.fixture(scope="module")
def catalogue() -> list[dict[str, Any]]:
    return _parse_po(PO_FILE)


def _messages(catalogue: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in catalogue if e["msgid"] and not e["obsolete"]]


def _translations(entry: dict[str, Any]) -> list[str]:
    return [v for k, v in entry.items() if k.startswith("msgstr")]


def test_catalogue_header_is_simplified_chinese_utf8_with_one_plural_form(catalogue):
    header = catalogue[0]
    assert header["msgid"] == ""
    assert "fuzzy" not in header.get("flags", set())
    fields = dict(
        line.split(": ", 1) for line in header["msgstr"].splitlines() if ": " in line
    )
    assert fields["Language"] == "zh_Hans"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"] == "nplurals=1; plural=0;"


def test_catalogue_has_no_empty_fuzzy_or_obsolete_entry(catalogue):
    messages = _messages(catalogue)
    assert len(messages) > 1000
    empty = [e["msgid"] for e in messages if not all(_translations(e))]
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e.get("flags", set())]
    obsolete = [e["msgid"] for e in catalogue if e["obsolete"]]
    assert empty == []
    assert fuzzy == []
    assert obsolete == []


def test_plural_entries_have_exactly_one_chinese_form(catalogue):
    plurals = [e for e in _messages(catalogue) if "msgid_plural" in e]
    assert plurals
    for entry in plurals:
        assert [k for k in entry if k.startswith("msgstr")] == ["msgstr[0]"], entry["msgid"]


def test_every_translation_keeps_the_placeholders_of_its_msgid(catalogue):
    mismatched = []
    for entry in _messages(catalogue):
        expected = sorted(PLACEHOLDER.findall(entry["msgid"]))
        for translation in _translations(entry):
            if sorted(PLACEHOLDER.findall(translation)) != expected:
                mismatched.append((entry["msgid"], translation))
    assert mismatched == []


def test_every_python_format_translation_can_be_formatted(catalogue):
    class AnyValue(dict):
        def __missing__(self, key: str) -> int:
            return 7

    for entry in _messages(catalogue):
        if "python-format" not in entry.get("flags", set()):
            continue
        for translation in _translations(entry):
            if "%(" in translation:
                formatted = translation % AnyValue()
            else:
                positional = len([p for p in PLACEHOLDER.findall(translation) if p != "%%"])
                formatted = translation % ((7,) * positional)
            assert "%(" not in formatted, entry["msgid"]


def test_compiled_catalogue_is_up_to_date_with_the_po_file(catalogue):
    with MO_FILE.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for entry in _messages(catalogue):
        if "msgctxt" in entry:
            got = compiled.pgettext(entry["msgctxt"], entry["msgid"])
        elif "msgid_plural" in entry:
            got = compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)
        else:
            got = compiled.gettext(entry["msgid"])
        if got != _translations(entry)[0]:
            stale.append(entry["msgid"])
    assert stale == [], "run: msgfmt -o django.mo django.po (or manage.py compilemessages)"


@pytest.mark.django_db
def test_login_page_is_chinese_by_default(client):
    page = client.get("/login/").content.decode()

    assert '<html lang="zh-hans">' in page
    assert "登录微营" in page
    assert "登录名" in page
    assert "Sign in to Weiying" not in page


@pytest.mark.django_db
def test_login_page_is_english_for_an_english_browser(client):
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en">' in page
    assert "Sign in to Weiying" in page
    assert "登录" not in page


@pytest.mark.django_db
def test_api_refusal_is_in_chinese_for_a_chinese_client(client):
    response = client.get("/api/org/me", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 401
    assert response.json() == {"code": "unauthenticated", "message": SIGN_IN_MESSAGE_ZH}


@pytest.mark.django_db
def test_api_refusal_is_in_english_for_an_english_client(client):
    response = client.get("/api/org/me", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json()["message"] == (
        "Sign in, or send a valid API token as 'Authorization: Bearer …'."
    )


def test_lazy_domain_error_is_translated_when_answered(company, login):
    response = login(company.rep_a).get("/api/org/employees/999999",
                                        HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "未找到，或不在你的可见范围内。"}


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (xgettext)")
def test_every_translatable_string_in_the_code_has_a_chinese_translation(tmp_path):
    # makemessages walks the current folder and writes into its locale/: run it on a copy of
    # the package, so the catalogue in the tree is only read.
    package = Path(weiying.__file__).parent
    copy = tmp_path / "weiying"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans", "--no-location",
         "--no-wrap", "--no-obsolete", "-v", "0"],
        cwd=copy, check=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": "weiying.conf.settings",
                                   "PYTHONPATH": str(package.parent)},
    )

    extracted = _messages(_parse_po(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    untranslated = [e["msgid"] for e in extracted
                    if "fuzzy" in e.get("flags", set()) or not all(_translations(e))]
    assert untranslated == [], "translate these in django.po, then run msgfmt"
