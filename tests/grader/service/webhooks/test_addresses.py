"""Where a webhook may point: http(s) URLs without credentials, to public addresses only (loopback,
private and link-local too with GRADER_WEBHOOK_ALLOW_PRIVATE), IPv4 and IPv6, mapped or not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.service.webhooks import addresses
from grader.service.webhooks.addresses import Refused, checked_addresses, literal, parse_url, unfit

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]
PRIVATE = [  # refused unless allowed
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::", "6to4 address of a loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("::ffff:192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("100.64.0.1", "shared"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("192.0.2.1", "private"),  # documentation ranges: nobody's receiver
]
NEVER = [  # refused even when private addresses are allowed
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("169.254.169.254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_fit(address: str) -> None:
    found = literal(address)
    assert found is not None and unfit(found, allow_private=False) is None


@pytest.mark.parametrize(("address", "kind"), PRIVATE)
def test_loopback_private_and_link_local_are_refused_unless_allowed(address: str, kind: str) -> None:
    found = literal(address)
    assert found is not None
    reason = unfit(found, allow_private=False)
    assert reason is not None and kind in reason and "GRADER_WEBHOOK_ALLOW_PRIVATE=true" in reason
    assert unfit(found, allow_private=True) is None


@pytest.mark.parametrize(("address", "kind"), NEVER)
def test_some_addresses_are_never_a_receiver(address: str, kind: str) -> None:
    found = literal(address)
    assert found is not None
    for allow_private in (False, True):
        reason = unfit(found, allow_private=allow_private)
        assert reason is not None and kind in reason


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://93.184.216.34/hook", "https:// or http://"),
        ("file:///etc/passwd", "https:// or http://"),
        ("93.184.216.34/hook", "https:// or http://"),
        ("https://user:pass@93.184.216.34/hook", "credentials"),
        ("https://token@93.184.216.34/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://93.184.216.34:99999/", "not a valid URL"),
        ("https://93.184.216.34/a b", "spaces or control characters"),
        ("https://93.184.216.34/\r\nX-Injected: 1", "spaces or control characters"),
        ("https://93.184.216.34/hook#part", "fragment"),
        ("https://93.184.216.34/" + "x" * 2000, "longer than 2000"),
    ],
)
def test_only_plain_http_urls_are_taken(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_url(url)


def test_a_url_is_taken_apart_for_the_request() -> None:
    target = parse_url("HTTPS://LMS.Example.EDU./grader/hook?course=cs231n")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "lms.example.edu",
        443,
        "/grader/hook?course=cs231n",
    )
    assert parse_url("http://[2606:4700::1111]:8080").host == "2606:4700::1111"
    assert parse_url("http://[2606:4700::1111]:8080").path == "/"
    assert parse_url("https://bücher.example/é").host == "xn--bcher-kva.example"
    assert parse_url("https://bücher.example/é").path == "/%C3%A9"


def test_every_address_a_name_resolves_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        addresses, "resolve", lambda host, port: [literal("93.184.216.34"), literal("::ffff:10.0.0.1")]
    )
    target = parse_url("https://lms.example.edu/hook")
    with pytest.raises(
        Refused, match=r"lms.example.edu: it resolves to 10.0.0.1 \(as ::ffff:a00:1\), a private address"
    ):
        checked_addresses(target, allow_private=False)
    # allowed: connected to as the IPv4 address it stands for
    assert [str(a) for a in checked_addresses(target, allow_private=True)] == ["93.184.216.34", "10.0.0.1"]


def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(Refused, match=r"localhost: it resolves to .*loopback"):
        checked_addresses(parse_url("http://localhost:8000/hook"), allow_private=False)
    assert checked_addresses(parse_url("http://localhost:8000/hook"), allow_private=True)


URLS = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
        st.one_of(
            st.text(max_size=40), st.ip_addresses().map(lambda a: f"[{a}]" if a.version == 6 else str(a))
        ),
        st.text(max_size=30),
    ),
)


@given(URLS)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_any_string_is_a_target_or_a_sentence_why_not(url: str) -> None:
    try:
        target = parse_url(url)
    except ValueError as exc:
        assert str(exc)
        return
    assert target.scheme in ("http", "https") and target.host and target.path.startswith("/")
    assert target.path.isascii() and target.host.isascii()
    try:
        checked_addresses(target, allow_private=False)
    except (Refused, addresses.Unresolvable) as exc:
        assert str(exc)
