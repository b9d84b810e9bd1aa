"""The metrics the request path keeps as plain numbers render as Prometheus families."""

from __future__ import annotations

from goalline.observability import Metrics


def test_requests_latency_and_counters_render_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.count_request("goals/register", "http", 0, 0.005)  # on a bound: in that bucket
    metrics.count_request("goals/register", "http", 0, 3.0)  # past the last bound: +Inf only
    metrics.count_request("goals/register", "http", 400, None)  # refused: no latency
    metrics.events_stored += 2
    metrics.duplicates += 1
    metrics.in_flight = lambda: 7
    text = metrics.render().decode()
    requests = 'goalline_api_requests_total{error="%s",method="goals/register",transport="http"}'
    assert requests % "0" + " 2.0" in text
    assert requests % "400" + " 1.0" in text
    assert 'goalline_api_request_seconds_bucket{le="0.0025",method="goals/register"} 0.0' in text
    assert 'goalline_api_request_seconds_bucket{le="0.005",method="goals/register"} 1.0' in text
    assert 'goalline_api_request_seconds_bucket{le="2.5",method="goals/register"} 1.0' in text
    assert 'goalline_api_request_seconds_bucket{le="+Inf",method="goals/register"} 2.0' in text
    assert 'goalline_api_request_seconds_count{method="goals/register"} 2.0' in text
    assert 'goalline_api_request_seconds_sum{method="goals/register"} 3.005' in text
    assert "goalline_goal_events_stored_total 2.0" in text
    assert "goalline_duplicate_requests_total 1.0" in text
    assert "goalline_api_in_flight 7.0" in text
