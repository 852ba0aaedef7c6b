"""CityStream operations API: time series, alerts and operator commands, live alert stream, ops-centre page."""
