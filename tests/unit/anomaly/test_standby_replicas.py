"""The workers' table standby replicas: configurable, one by default, handed to Faust as table_standby_replicas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.anomaly.settings import AnomalySettings


def test_one_standby_by_default_and_set_from_the_environment(monkeypatch):
    assert AnomalySettings().standby_replicas == 1
    monkeypatch.setenv("CITYSTREAM_ANOMALY_STANDBY_REPLICAS", "0")
    assert AnomalySettings().standby_replicas == 0
    with pytest.raises(ValidationError):
        AnomalySettings(standby_replicas=-1)


def test_the_worker_app_uses_the_setting():
    from services.anomaly.app import app, settings

    assert app.conf.table_standby_replicas == settings.standby_replicas == 1
