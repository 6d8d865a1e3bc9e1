"""CORS_ALLOW_ORIGINS as browsers compare origins: exact text, scheme://host[:port], nothing after it."""

import pytest

from core.cors import CorsPolicy, parse_origins


@pytest.mark.parametrize(
    "text, origins",
    [
        ("", ()),
        ("https://shop.example", ("https://shop.example",)),
        (" https://a.example , http://127.0.0.1:8080 ", ("https://a.example", "http://127.0.0.1:8080")),
        ("*", ("*",)),
        ("http://[::1]:3000", ("http://[::1]:3000",)),
        # a scheme's default port: browsers never send it, so it is dropped (and the duplicate with it)
        ("https://shop.example:443,https://shop.example", ("https://shop.example",)),
        ("http://shop.example:80, https://shop.example:80", ("http://shop.example", "https://shop.example:80")),
    ],
)
def test_origins_that_are_accepted(text, origins):
    assert parse_origins(text) == origins


@pytest.mark.parametrize(
    "text, reason",
    [
        ("https://shop.example/", "not an origin"),  # browsers send no trailing slash: it would never match
        ("https://shop.example/app", "not an origin"),
        ("shop.example", "not an origin"),
        ("ftp://shop.example", "not an origin"),
        ("https://Shop.example", "not an origin"),  # browsers send it lower-cased
        ("https://user@shop.example", "not an origin"),
        ("https://shop.example:99999", "not an origin"),
        ("*, https://shop.example", "write it alone"),
        ("https://bücher.example", "ASCII form"),  # browsers send https://xn--bcher-kva.example
        ("https://shop.example:443/", "not an origin"),
        ("https://shop .example", "not an origin"),  # no host name holds a space
        # the same origin in a spelling no browser sends: the message gives the one to write
        ("https://shop.example:", "as 'https://shop.example'; write that"),
        ("https://shop.example:0443", "as 'https://shop.example'; write that"),
        ("https://shop.example:08080", "as 'https://shop.example:8080'; write that"),
    ],
)
def test_origins_that_are_refused_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_origins(text)


def test_any_origin_is_one_answer_for_all_and_no_origin_setting_sends_nothing():
    anyone = CorsPolicy(("*",))
    for origin in ("https://x.example", None):
        assert anyone.answer_headers(origin, "Accept")["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in anyone.answer_headers(origin, "Accept")
    closed = CorsPolicy()
    assert closed.answer_headers("https://x.example", "Accept") == {}
    assert closed.preflight_headers("https://x.example") == {}
