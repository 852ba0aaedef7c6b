"""`citystream register import/export/expiring` against a running register."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from citystream.cli import app
from tests.integration.register.conftest import ADMIN_TOKEN, unique_id


def test_import_reports_rows_then_export_and_expiring_list_them(live_register, organisation, tmp_path):
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    good, bad = unique_id(), unique_id()
    csv_file = tmp_path / "sensors.csv"
    csv_file.write_text(
        "sensor_id,owner_organisation,owner_contact_name,owner_contact_email,domain,metrics,longitude,latitude,"
        "purpose,legal_ground,personal_data,retention_days,reporting_interval_s,rate_limit_per_minute,active_until\n"
        f"{good},{organisation},Jan,jan@example.org,traffic,intensity:veh/h:0:5000,4.9,52.37,counting,public_task,"
        f"false,30,60,60,{soon}\n"
        f"{bad},{organisation},Jan,jan@example.org,traffic,intensity:veh/h:9:1,4.9,52.37,counting,public_task,"
        f"false,30,60,60,{soon}\n")
    options = ["--url", live_register, "--token", ADMIN_TOKEN]
    runner = CliRunner()

    imported = runner.invoke(app, ["register", "import", str(csv_file), *options])
    assert imported.exit_code == 1  # one row failed
    assert "1 declared, 1 failed" in imported.output
    assert "metrics[0]" in imported.output and "declared" in imported.output

    exported = runner.invoke(app, ["register", "export", "--output", str(tmp_path / "out.csv"), *options])
    assert exported.exit_code == 0, exported.output
    text = (tmp_path / "out.csv").read_text()
    assert good in text and bad not in text

    expiring = runner.invoke(app, ["register", "expiring", "--days", "7", *options])
    assert expiring.exit_code == 0 and good in expiring.output
    assert good not in runner.invoke(app, ["register", "expiring", "--days", "1", *options]).output

    denied = runner.invoke(app, ["register", "export", "--url", live_register, "--token", "wrong-token"])
    assert denied.exit_code == 1 and "authorization" in denied.output
