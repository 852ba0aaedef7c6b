"""Pure register rules: metrics per domain, active window, lifecycle, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.common import METRICS_BY_DOMAIN, Domain
from schemas.register import MetricDeclaration, SensorStatus
from services.register import domain
from services.register.domain import RegisterError

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def metric(name: str) -> MetricDeclaration:
    return MetricDeclaration(name=name, unit="u", min=0, max=1)


@pytest.mark.parametrize("sensor_domain", list(Domain))
def test_every_smart_data_models_name_of_the_domain_is_accepted(sensor_domain):
    domain.check_metrics(sensor_domain, [metric(name) for name in METRICS_BY_DOMAIN[sensor_domain]])


def test_a_metric_of_another_domain_is_refused_with_its_index():
    with pytest.raises(RegisterError) as refused:
        domain.check_metrics(Domain.TRAFFIC, [metric("intensity"), metric("fillingLevel")])
    assert (refused.value.field, refused.value.reason) == ("metrics[1].name", "METRIC_NOT_VALID_FOR_DOMAIN")


def test_duplicate_and_missing_metrics_are_refused():
    with pytest.raises(RegisterError, match="twice"):
        domain.check_metrics(Domain.ENERGY, [metric("voltage"), metric("voltage")])
    with pytest.raises(RegisterError, match="at least one"):
        domain.check_metrics(Domain.ENERGY, [])


def test_min_above_max_is_refused_by_the_contract():
    with pytest.raises(ValueError, match="above max"):
        MetricDeclaration(name="voltage", unit="V", min=300, max=200)


def test_window_rules():
    domain.check_window(None, NOW + timedelta(days=1), NOW)
    domain.check_window(None, None, NOW)
    with pytest.raises(RegisterError) as past:
        domain.check_window(None, NOW - timedelta(seconds=1), NOW)
    assert past.value.field == "active_until"
    with pytest.raises(RegisterError) as inverted:
        domain.check_window(NOW + timedelta(days=2), NOW + timedelta(days=1), NOW)
    assert inverted.value.field == "active_from"


@pytest.mark.parametrize(("current", "target", "allowed"), [
    (SensorStatus.DRAFT, SensorStatus.ACTIVE, True),
    (SensorStatus.DRAFT, SensorStatus.SUSPENDED, False),
    (SensorStatus.ACTIVE, SensorStatus.SUSPENDED, True),
    (SensorStatus.SUSPENDED, SensorStatus.ACTIVE, True),
    (SensorStatus.ACTIVE, SensorStatus.DRAFT, False),
    (SensorStatus.RETIRED, SensorStatus.ACTIVE, False),
    (SensorStatus.RETIRED, SensorStatus.SUSPENDED, False),
])
def test_transitions(current, target, allowed):
    if allowed:
        domain.check_transition(current, target)
    else:
        with pytest.raises(RegisterError) as refused:
            domain.check_transition(current, target)
        assert (refused.value.status_code, refused.value.field) == (409, "status")


def test_only_active_inside_the_window_may_publish():
    until = NOW + timedelta(hours=1)
    assert domain.may_publish(SensorStatus.ACTIVE, None, until, NOW)
    assert not domain.may_publish(SensorStatus.SUSPENDED, None, until, NOW)
    assert not domain.may_publish(SensorStatus.DRAFT, None, until, NOW)
    assert not domain.may_publish(SensorStatus.ACTIVE, NOW + timedelta(minutes=1), until, NOW)
    # Nobody acts: time passing is enough.
    assert not domain.may_publish(SensorStatus.ACTIVE, None, until, until + timedelta(seconds=1))
    assert domain.is_expired(until, until) and not domain.is_expired(None, until)


def test_expires_within_counts_only_future_ends_inside_the_horizon():
    assert domain.expires_within(NOW + timedelta(days=3), NOW, 7)
    assert not domain.expires_within(NOW + timedelta(days=8), NOW, 7)
    assert not domain.expires_within(NOW - timedelta(days=1), NOW, 7)
    assert not domain.expires_within(None, NOW, 7)


def test_personal_data_needs_a_privacy_statement():
    domain.check_privacy(False, None)
    domain.check_privacy(True, "https://example.org/privacy")
    with pytest.raises(RegisterError) as refused:
        domain.check_privacy(True, None)
    assert refused.value.field == "privacy_statement_url"


def test_there_are_six_legal_grounds():
    assert len(domain.LegalGround) == 6


def test_the_topic_record_carries_a_map_point_for_points_and_areas():
    from services.register.records import map_point

    assert map_point({"type": "Point", "coordinates": [4.8952, 52.3702]}) == (4.8952, 52.3702)
    square = {"type": "Polygon", "coordinates": [[[4.0, 52.0], [5.0, 52.0], [5.0, 53.0], [4.0, 53.0], [4.0, 52.0]]]}
    assert map_point(square) == (4.5, 52.5)
    assert map_point(None) is None
