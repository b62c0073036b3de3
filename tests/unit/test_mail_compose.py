"""Share and receipt mails (edge.mail.compose) and mail settings: addresses, header injection,
plain + HTML parts, escaping, human sizes; settings parsing and flags."""

from __future__ import annotations

import argparse
import email
import email.policy

import pytest

from edge.errors import ConfigError, InvalidInputError
from edge.mail.compose import (DownloadLine, ShareItem, address_problem, check_address, check_recipients,
                               human_size, receipt_mail, render, share_mail)
from edge.mail.settings import MailSettings, add_arguments, env_from_args

ITEM = ShareItem("shot.png", 2048, 1_700_000_000, "http://edge.local:8383/s/AAAAAAAAAAAAAAAAAAAAAA")


def _parse(raw: str) -> email.message.EmailMessage:
    return email.message_from_string(raw, policy=email.policy.default)


def _parts(msg) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in msg.iter_parts()}


@pytest.mark.parametrize("addr", ["a@example.com", "first.last+tag@sub.example.org", "x_y-z@a-b.io",
                                  "o'brien@example.ie"])
def test_good_addresses(addr):
    assert address_problem(addr) is None
    assert check_address(addr) == addr


@pytest.mark.parametrize("addr", [
    "", "plain", "a@b", "@example.com", "a@", "a@@example.com", "a..b@example.com", ".a@example.com",
    "a@-example.com", "a@example-.com", "a@1.2.3.4", "a@[127.0.0.1]", "A <a@example.com>",
    "a@example.com, b@example.com", "a@example.com\r\nBcc: victim@example.com", "a@example.com\nX: y",
    "a@exa\rmple.com", "\"quoted\"@example.com", "a b@example.com", "ü@example.com", "a@exämple.com",
    "a@example.com\u2028", "a@example.com\x00", "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
    "(comment)a@example.com",
])
def test_bad_addresses_refused_naming_them(addr):
    assert address_problem(addr) is not None
    with pytest.raises(InvalidInputError) as err:
        check_address(addr)
    assert err.value.message.startswith("Invalid recipient address '")
    assert "\r" not in err.value.message and "\n" not in err.value.message


@pytest.mark.parametrize("value", [None, 5, "a@example.com", {"a": 1}, [1], [None], [["a@example.com"]]])
def test_recipient_lists_must_be_lists_of_strings(value):
    with pytest.raises(InvalidInputError):
        check_recipients(value, 20)


def test_recipient_list_rules():
    with pytest.raises(InvalidInputError, match="must not be empty"):
        check_recipients([], 20)
    assert check_recipients(["a@example.com", "A@Example.com", "b@example.com"], 20) == ["a@example.com",
                                                                                      "b@example.com"]
    with pytest.raises(InvalidInputError, match="at most 2"):
        check_recipients(["a@example.com", "b@example.com", "c@example.com"], 2)
    with pytest.raises(InvalidInputError, match="bad@"):
        check_recipients(["a@example.com", "bad@"], 20)


def test_share_mail_has_text_and_html_with_every_link_detail():
    items = [ITEM, ShareItem("logs/day.tar", None, 1_700_086_400, "http://edge.local:8383/s/BBBBBBBBBBBBBBBBBBBBBB")]
    raw = render(share_mail(sender="Edge <edge@example.com>", recipient="bob@example.com", items=items,
                            message="Hello Bob,\nthe <b>files</b> & more", instance="plant-7", now=1_699_000_000))
    assert raw.isascii() and "\r\n" in raw
    msg = _parse(raw)
    assert msg["To"] == "bob@example.com" and msg["From"] == "Edge <edge@example.com>"
    assert msg["Subject"] == "Shared with you: shot.png and 1 more"
    assert msg["Message-ID"].endswith("@example.com>") and msg["Date"]
    parts = _parts(msg)
    text, page = parts["text/plain"], parts["text/html"]
    for needle in ("shot.png", "2.0 KB", "2023-11-14 22:13:20 UTC", ITEM.short_url, "logs/day.tar",
                   "size unknown", "Hello Bob,", "the <b>files</b> & more", "plant-7"):
        assert needle in text
    assert "the &lt;b&gt;files&lt;/b&gt; &amp; more" in page and "<b>files</b>" not in page
    assert f'href="{ITEM.short_url}"' in page


@pytest.mark.parametrize("evil", ["a\r\nBcc: victim@example.com", "a\nBcc: victim@example.com",
                                  "a\rBcc: victim@example.com", "a\u2028Bcc: victim@example.com",
                                  "a\x85Bcc: victim@example.com", "=?utf-8?q?x?=\r\n\r\nbody"])
def test_header_injection_through_file_names_is_neutralised(evil):
    item = ShareItem(evil + ".png", 1, 1_700_000_000, "http://h.example/s/AAAAAAAAAAAAAAAAAAAAAA")
    raw = render(share_mail(sender="edge@example.com", recipient="bob@example.com", items=[item], message=evil))
    msg = _parse(raw)
    assert msg["Bcc"] is None and msg.get_all("To") == ["bob@example.com"]
    head = raw.split("\r\n\r\n", 1)[0]
    assert "\nBcc:" not in head and "\n\nbody" not in head
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    raw2 = render(receipt_mail(sender="edge@example.com", recipient="own@example.com", file_name=evil,
                               link_id="L" * 22, downloads=[DownloadLine(1.0, evil, 5, evil)]))
    assert _parse(raw2)["Bcc"] is None


def test_header_injection_through_recipients_is_refused():
    for evil in ("bob@example.com\r\nBcc: victim@example.com", "bob@example.com>\r\nBcc: v@example.com"):
        with pytest.raises(InvalidInputError):
            share_mail(sender="edge@example.com", recipient=evil, items=[ITEM], message=None)


def test_long_subject_is_cut():
    item = ShareItem("x" * 500, 1, 1_700_000_000, "http://h.example/s/AAAAAAAAAAAAAAAAAAAAAA")
    msg = _parse(render(share_mail(sender="edge@example.com", recipient="b@example.com", items=[item], message=None)))
    assert len(msg["Subject"]) <= 150


def test_unicode_survives_encoding():
    item = ShareItem("Größe 日本.png", 1, 1_700_000_000, "http://h.example/s/AAAAAAAAAAAAAAAAAAAAAA")
    raw = render(share_mail(sender="Édge <edge@example.com>", recipient="b@example.com", items=[item],
                            message="Grüße"))
    assert raw.isascii()
    msg = _parse(raw)
    assert msg["Subject"] == "Shared with you: Größe 日本.png"
    assert "Grüße" in _parts(msg)["text/plain"]


def test_receipt_mail_sums_downloads():
    lines = [DownloadLine(1_700_000_000 + i, f"10.0.0.{i}", 1000, "bytes=0-99" if i else None) for i in range(3)]
    msg = _parse(render(receipt_mail(sender="edge@example.com", recipient="own@example.com", file_name="shot.png",
                                     link_id="L" * 22, downloads=lines, dropped=2, dropped_bytes=2000)))
    assert msg["Subject"] == "Download receipt: shot.png (5 downloads)"
    assert msg["Auto-Submitted"] == "auto-generated"
    text = _parts(msg)["text/plain"]
    assert "5 times (5.0 KB in total)" in text and "10.0.0.2" in text and "bytes=0-99" in text
    assert "whole file" in text and "2 more" in text


@pytest.mark.parametrize("n,text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (1_500_000, "1.5 MB"),
                                    (3 * 10**9, "3.0 GB"), (None, "size unknown")])
def test_human_size(n, text):
    assert human_size(n) == text


# --- settings -----------------------------------------------------------------------------------

def test_settings_defaults_and_env():
    s = MailSettings.from_env({})
    assert not s.enabled and s.max_recipients == 20 and s.mails_per_hour == 100
    s = MailSettings.from_env({"EDGE_SMTP_HOST": "mx.example.com", "EDGE_SMTP_SECURITY": "TLS",
                               "EDGE_SMTP_USER": "me@example.com", "EDGE_SMTP_PASSWORD": "pw",
                               "EDGE_SHARE_MAX_RECIPIENTS": "3", "EDGE_SHARE_MAILS_PER_HOUR": "7"})
    assert s.enabled and s.security == "tls" and s.port == 465 and s.sender == "me@example.com"
    assert (s.max_recipients, s.mails_per_hour) == (3, 7)
    assert any(line == "mail.password = ***" for line in s.describe()) and "pw" not in str(s.describe())
    s = MailSettings.from_env({"EDGE_SMTP_HOST": "h", "EDGE_SMTP_SECURITY": "none", "EDGE_SMTP_PORT": "2525",
                               "EDGE_SMTP_FROM": "Edge Box <box@example.com>"})
    assert (s.port, s.sender, s.sender_address) == (2525, "Edge Box <box@example.com>", "box@example.com")


@pytest.mark.parametrize("env,var", [
    ({"EDGE_SMTP_SECURITY": "ssl"}, "EDGE_SMTP_SECURITY"),
    ({"EDGE_SMTP_PORT": "0"}, "EDGE_SMTP_PORT"),
    ({"EDGE_SMTP_PORT": "70000"}, "EDGE_SMTP_PORT"),
    ({"EDGE_SMTP_PORT": "x"}, "EDGE_SMTP_PORT"),
    ({"EDGE_SMTP_FROM": "not an address"}, "EDGE_SMTP_FROM"),
    ({"EDGE_SMTP_FROM": "a@example.com\r\nBcc: b@example.com"}, "EDGE_SMTP_FROM"),
    ({"EDGE_SHARE_MAX_RECIPIENTS": "0"}, "EDGE_SHARE_MAX_RECIPIENTS"),
    ({"EDGE_SHARE_MAILS_PER_HOUR": "lots"}, "EDGE_SHARE_MAILS_PER_HOUR"),
    ({"EDGE_SMTP_PASSWORD": "pw"}, "EDGE_SMTP_PASSWORD"),
    ({"EDGE_SMTP_HOST": "bad host"}, "EDGE_SMTP_HOST"),
    ({"EDGE_SMTP_TIMEOUT": "0"}, "EDGE_SMTP_TIMEOUT"),
])
def test_bad_settings_name_the_variable(env, var):
    with pytest.raises(ConfigError, match=var):
        MailSettings.from_env(env)


def test_flags_override_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--smtp-host", "flag.example.com", "--smtp-port", "2525", "--smtp-security", "none"])
    env = {"EDGE_SMTP_HOST": "env.example.com", "EDGE_SMTP_PORT": "25", "EDGE_SMTP_USER": "u"}
    s = MailSettings.from_env({**env, **env_from_args(args)})
    assert (s.host, s.port, s.security, s.user) == ("flag.example.com", 2525, "none", "u")
    assert env_from_args(parser.parse_args([])) == {}
