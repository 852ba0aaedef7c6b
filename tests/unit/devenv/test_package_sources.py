"""Package sources come from the tools' own configuration: apt's sources for Debian, Maven's settings for jars."""

from __future__ import annotations

import pytest

from citystream.devenv import kafka, timescaledb
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem


def test_no_repository_address_is_built_in():
    defaults = DevSettings.model_fields
    assert defaults["maven_repository"].default == "" and defaults["debian_mirror"].default == ""


def test_mvn_uses_its_own_configuration_unless_a_mirror_is_named(tmp_path):
    assert kafka._mirror_settings(tmp_path, "") == []
    options = kafka._mirror_settings(tmp_path, "http://mirror.example/maven2")
    assert options[0] == "-s" and "http://mirror.example/maven2" in (tmp_path / "citystream-maven-settings.xml").read_text()


def test_the_debian_archive_is_read_from_one_line_and_deb822_sources(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://third.example/apt cloud-sdk-bookworm main\n"
                       "deb http://one.example/debian bookworm main\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://nodes.example/node_20.x\nSuites: nodistro\nComponents: main\n\n"
        "Types: deb\nURIs: http://deb822.example/debian/\nSuites: trixie trixie-updates\nComponents: main\n")
    assert timescaledb.configured_debian_mirror((parts,)) == "http://deb822.example/debian"
    assert timescaledb.configured_debian_mirror((listing,)) == "http://one.example/debian"
    assert timescaledb.configured_debian_mirror((listing, parts)) == "http://one.example/debian"


def test_security_and_third_party_suites_do_not_count(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text("deb http://security.example/debian-security bookworm-security main\n"
                       "deb http://nodes.example/node nodistro main\n")
    assert timescaledb.configured_debian_mirror((listing,)) is None


def test_the_override_wins_and_no_archive_at_all_is_a_clear_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(timescaledb, "configured_debian_mirror", lambda: None)
    named = DevSettings(state_dir=tmp_path, debian_mirror="http://mirror.example/debian/")
    assert timescaledb.debian_mirror(named) == "http://mirror.example/debian"
    with pytest.raises(RuntimeProblem, match="CITYSTREAM_DEV_DEBIAN_MIRROR"):
        timescaledb.debian_mirror(DevSettings(state_dir=tmp_path))
