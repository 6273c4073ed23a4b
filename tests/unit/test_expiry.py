"""Deadlines: parsing --expires-in, the metadata format, what list/describe show, and
which clusters reap picks (servers are plain records here; the sandbox test reaps for real)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from spark_openstack import errors
from spark_openstack.config import launch_spec_from, resolve
from spark_openstack.expiry import (META_EXPIRES, cluster_deadline, deadline_after,
                                    expiry_dict, parse_deadline, parse_duration)
from spark_openstack.reap import expired_clusters
from support.cloud import FakeCloud, server

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, seconds", [("8h", 8 * 3600), ("90m", 5400), ("2d", 172800),
                                           ("1h30m", 5400), ("1d2h", 93600), (" 5M ", 300)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "8", "8x", "h", "4m", "0h", "367d", "8h-1m", "1.5h"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(errors.UsageError) as info:
        parse_duration(text)
    assert "--expires-in" in info.value.message and info.value.hint


def test_deadline_round_trips_through_metadata():
    value = deadline_after(3600, now=NOW)
    assert value == "2026-11-24T13:00:00Z"
    assert parse_deadline(value) == NOW + timedelta(hours=1)
    assert parse_deadline("tomorrow") is None and parse_deadline(None) is None


def test_expiry_texts():
    assert expiry_dict(None, now=NOW)["text"] == "never"
    ahead = expiry_dict(NOW + timedelta(hours=7, minutes=59), now=NOW)
    assert ahead["text"] == "2026-11-24 19:59 UTC (in 7h59m)" and not ahead["expired"]
    assert ahead["remaining_s"] == 7 * 3600 + 59 * 60
    past = expiry_dict(NOW - timedelta(minutes=3), now=NOW)
    assert past["expired"] and past["text"] == "EXPIRED 3m ago" and past["remaining_s"] == -180
    assert expiry_dict(NOW, now=NOW)["expired"]      # the deadline itself is past


@dataclass
class Server:
    name: str
    metadata: dict = field(default_factory=dict)


def test_the_earliest_server_deadline_counts_and_garbage_is_ignored():
    servers = [Server("m", {META_EXPIRES: "2026-11-24T13:00:00Z"}),
               Server("w1", {META_EXPIRES: "2026-11-24T11:00:00Z"}),
               Server("w2", {META_EXPIRES: "soon"}), Server("w3")]
    assert cluster_deadline(servers) == NOW - timedelta(hours=1)
    assert cluster_deadline([Server("x")]) is None


def test_reap_picks_only_clusters_past_their_deadline():
    provider = FakeCloud(servers=[
        server("gone-master", cluster="gone", metadata={META_EXPIRES: "2026-11-24T11:59:00Z"}),
        server("later-master", cluster="later",
               metadata={META_EXPIRES: "2026-11-24T12:01:00Z"}),
        server("never-master", cluster="never"),
        server("garbage-master", cluster="garbage", metadata={META_EXPIRES: "2026-13-45"}),
    ])
    expired, kept = expired_clusters(provider=provider, now=NOW)
    assert [e["cluster"] for e in expired] == ["gone"] and kept == 3


def test_launch_spec_carries_the_duration():
    def spec(**flags):
        values = {"keypair": "k", "image": "i", "allowed_cidr": ("10.0.0.0/8",), **flags}
        return launch_spec_from(resolve(flags=values, file_values={}, file_path=None),
                                cluster_name="demo")
    assert spec().expires_in is None
    assert spec(expires_in="8h").expires_in == 8 * 3600
    with pytest.raises(errors.UsageError):
        spec(expires_in="8")
