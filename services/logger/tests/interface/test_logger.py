"""The logger against the real broker and PostgreSQL, as a real process."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pika
import pytest
from parley_common import bus
from parley_common.testing import Proc, queue_consumers, wait_until
from sqlalchemy import create_engine, func, select

from parley_logger.models import LogRecord


def make_record(service: str, level: str, event: str, *, ago: timedelta = timedelta(0),
                instance: str = "test-1", **fields) -> dict:
    ts = (datetime.now(timezone.utc) - ago).isoformat().replace("+00:00", "Z")
    return {"event": event, "level": level, "ts": ts, "service": service, "instance": instance,
            **fields}


def publish(channel, body, routing_key: str) -> None:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    channel.basic_publish(bus.LOG_EXCHANGE, routing_key, body,
                          pika.BasicProperties(content_type="application/json", delivery_mode=2))


def publish_record(channel, record: dict) -> bytes:
    body = json.dumps(record).encode()
    publish(channel, body, bus.log_routing_key(record["service"], record["level"]))
    return body


class LoggerProcess:
    """The logger under test; restartable, optionally with replicas."""

    def __init__(self, isolation, amqp_uri: str, database_url: str):
        self.isolation, self.amqp_uri, self.database_url = isolation, amqp_uri, database_url
        self.count = 0
        self.proc = self.start()

    def start(self, **extra) -> Proc:
        self.count += 1
        env = self.isolation.env(AMQP_URI=self.amqp_uri, DATABASE_URL=self.database_url,
                                 INSTANCE_ID=f"logger-{self.count}", LOGGER_BATCH_MS="100",
                                 **extra)
        proc = Proc(f"logger-{uuid.uuid4().hex[:6]}", "parley_logger", env,
                    self.isolation.workdir).start()
        return proc

    def wait_consuming(self, consumers: int = 1) -> None:
        wait_until(lambda: queue_consumers(self.amqp_uri, bus.LOG_ARCHIVE_QUEUE) >= consumers,
                   60, what="logger consuming logs.archive", proc=self.proc)


@pytest.fixture(scope="module")
def database_url(isolation):
    return isolation.database_url("logger")


@pytest.fixture(scope="module")
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def logger(isolation, logger_amqp_uri, database_url):
    # Topology first, so nothing published before the logger starts is lost.
    connection = pika.BlockingConnection(pika.URLParameters(logger_amqp_uri))
    bus.declare_log_topology_pika(connection.channel())
    connection.close()
    running = LoggerProcess(isolation, logger_amqp_uri, database_url)
    running.wait_consuming()
    yield running
    running.proc.stop()


def rows(engine, service: str) -> list[LogRecord]:
    with engine.connect() as connection:
        return list(connection.execute(
            select(LogRecord).where(LogRecord.service == service).order_by(LogRecord.id)))


def count(engine, service: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).where(LogRecord.service == service))


def run_query(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parley_logger.query", "--database-url",
                           database_url, *args], capture_output=True, text=True, timeout=60)


def test_records_of_several_services_and_levels_are_archived(logger, amqp_channel, engine):
    tag = uuid.uuid4().hex[:6]
    sent = [make_record(f"rooms-{tag}", "info", "room_created", room_id="r1"),
            make_record(f"rooms-{tag}", "error", "db_failed", error="boom", attempt=2),
            make_record(f"gateway-{tag}", "warning", "slow_rpc", elapsed_ms=812.5,
                        nested={"a": [1, 2]}),
            make_record(f"auth-{tag}", "debug", "token_checked", instance="auth-7")]
    for record in sent:
        publish_record(amqp_channel, record)
    wait_until(lambda: sum(count(engine, s) for s in {r["service"] for r in sent}) == 4, 30,
               what="4 archived rows", proc=logger.proc)

    (error_row,) = [r for r in rows(engine, f"rooms-{tag}") if r.level == "error"]
    assert error_row.event == "db_failed"
    assert error_row.instance == "test-1"
    assert error_row.fields == {"error": "boom", "attempt": 2}
    assert error_row.ts == datetime.fromisoformat(sent[1]["ts"])
    assert len(error_row.dedupe_key) == 64
    (gateway_row,) = rows(engine, f"gateway-{tag}")
    assert (gateway_row.level, gateway_row.event) == ("warning", "slow_rpc")
    assert gateway_row.fields == {"elapsed_ms": 812.5, "nested": {"a": [1, 2]}}
    (auth_row,) = rows(engine, f"auth-{tag}")
    assert (auth_row.instance, auth_row.level) == ("auth-7", "debug")


def test_the_same_body_twice_makes_one_row(logger, amqp_channel, engine):
    service = f"dup-{uuid.uuid4().hex[:6]}"
    record = make_record(service, "info", "duplicated", n=1)
    body = publish_record(amqp_channel, record)
    publish(amqp_channel, body, f"{service}.info")  # same batch (most likely)
    wait_until(lambda: count(engine, service) >= 1, 30, what="first copy", proc=logger.proc)
    publish(amqp_channel, body, f"{service}.info")  # a later batch: hits the unique key
    publish_record(amqp_channel, make_record(service, "info", "sentinel"))
    wait_until(lambda: any(r.event == "sentinel" for r in rows(engine, service)), 30,
               what="sentinel row", proc=logger.proc)
    events = [r.event for r in rows(engine, service)]
    assert sorted(events) == ["duplicated", "sentinel"]


def test_malformed_bodies_are_kept_as_malformed_records(logger, amqp_channel, engine):
    service = f"bad-{uuid.uuid4().hex[:6]}"
    publish(amqp_channel, b"this is {not json", f"{service}.info")
    publish(amqp_channel, b"[1, 2, 3]", f"{service}.warning")
    publish(amqp_channel, b"\xff\xfe\x00binary", f"{service}.error")
    publish(amqp_channel, b"x" * 20_000, f"{service}.info")
    publish_record(amqp_channel, make_record(service, "info", "after_the_garbage"))
    wait_until(lambda: count(engine, service) == 5, 30, what="5 rows", proc=logger.proc)

    stored = rows(engine, service)
    malformed = [r for r in stored if r.event == "malformed_log_record"]
    assert len(malformed) == 4
    assert all(r.level == "error" and r.instance == "unknown" for r in malformed)
    raws = {r.fields["raw"][:17] for r in malformed}
    assert "this is {not json" in raws and "[1, 2, 3]" in raws
    assert any(r.fields["reason"].startswith("not an object") for r in malformed)
    assert max(len(r.fields["raw"]) for r in malformed) <= 4001  # truncated, not 20 000
    assert any(r.event == "after_the_garbage" for r in stored)
    assert logger.proc.alive()


def test_error_records_raise_one_alert_line_each(logger, amqp_channel):
    event = f"disk_full_{uuid.uuid4().hex[:6]}"
    publish_record(amqp_channel, make_record("rooms", "error", event, error="ENOSPC"))
    publish_record(amqp_channel, make_record("rooms", "info", event + "_not_an_alert"))

    def alerts():
        return [r for r in logger.proc.log_records() if r.get("alert") == "log_alert"
                and r.get("event", "").startswith(event)]

    (alert,) = wait_until(alerts, 30, what="the alert line", proc=logger.proc)
    assert alert["service"] == "rooms" and alert["level"] == "error"
    assert alert["error"] == "ENOSPC"
    time.sleep(0.5)
    assert len(alerts()) == 1  # the info record is archived, not alerted


def test_query_cli_filters_by_service_level_since_and_event(logger, amqp_channel, engine,
                                                            database_url):
    service = f"q-{uuid.uuid4().hex[:6]}"
    sent = [make_record(service, "info", "old_info", ago=timedelta(hours=3)),
            make_record(service, "error", "old_error", ago=timedelta(hours=3)),
            make_record(service, "info", "recent_info", ago=timedelta(minutes=5)),
            make_record(service, "warning", "recent_warning", ago=timedelta(minutes=4)),
            make_record(service, "error", "recent_error", ago=timedelta(minutes=3), code=7),
            make_record(service, "critical", "recent_critical", ago=timedelta(minutes=2)),
            make_record("other-" + service, "error", "recent_error", ago=timedelta(minutes=1))]
    for record in sent:
        publish_record(amqp_channel, record)
    wait_until(lambda: count(engine, service) == 6, 30, what="6 rows", proc=logger.proc)

    def events(*args):
        result = run_query(database_url, "--service", service, "--json", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["event"] for line in result.stdout.splitlines()]

    # newest first
    assert events("--since", "10m") == ["recent_critical", "recent_error", "recent_warning",
                                        "recent_info"]
    assert events("--level", "error") == ["recent_error", "old_error"]
    assert events("--level", "error", "--since", "1h") == ["recent_error"]
    assert events("--min-level", "warning", "--since", "10m") == [
        "recent_critical", "recent_error", "recent_warning"]
    assert events("--since", "4h", "--until", "1h") == ["old_error", "old_info"]
    assert events("--event", "RECENT_", "--limit", "2") == ["recent_critical", "recent_error"]
    iso_since = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert events("--since", iso_since, "--level", "info") == ["recent_info"]

    result = run_query(database_url, "--service", service, "--level", "error", "--since", "10m",
                       "--json")
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["fields"] == {"code": 7}
    assert record["instance"] == "test-1" and record["ts"].endswith("Z")

    table = run_query(database_url, "--service", service, "--min-level", "critical")
    assert table.returncode == 0
    assert "recent_critical" in table.stdout and "CRITICAL" in table.stdout
    assert "recent_error" not in table.stdout

    bad = run_query(database_url, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither a duration" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = run_query(database_url, "--level", "loud")
    assert bad.returncode == 2 and "unknown level loud" in bad.stderr


def test_healthcheck_passes_for_a_running_logger(logger, database_url):
    env = logger.proc.env
    check = subprocess.run([sys.executable, "-m", "parley_logger", "healthcheck"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    broken = subprocess.run([sys.executable, "-m", "parley_logger", "healthcheck"],
                            env={**env, "DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/x"},
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "unhealthy: database" in broken.stderr


def test_two_replicas_share_the_queue_without_duplicates(logger, amqp_channel, engine):
    second = logger.start()
    try:
        logger.wait_consuming(consumers=2)
        service = f"scale-{uuid.uuid4().hex[:6]}"
        for n in range(300):
            publish_record(amqp_channel, make_record(service, "info", f"e{n}", n=n))
        wait_until(lambda: count(engine, service) == 300, 60, what="300 rows", proc=second)
        time.sleep(0.5)
        assert count(engine, service) == 300
    finally:
        assert second.stop() == 0


def test_sigterm_mid_stream_loses_nothing(logger, amqp_channel, engine):
    service = f"burst-{uuid.uuid4().hex[:6]}"
    first = logger.proc
    wait_until(lambda: queue_consumers(logger.amqp_uri, bus.LOG_ARCHIVE_QUEUE) == 1, 30,
               what="a single consumer", proc=first)
    for n in range(2000):
        publish_record(amqp_channel, make_record(service, "info", f"burst-{n}", n=n))
        if n == 600:  # the logger is busy with the stream when the signal lands
            first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(10) == 0  # a bound, not a speed check: it stops, cleanly
    stored_before_restart = count(engine, service)
    assert 0 < stored_before_restart < 2000
    # It flushed and acked on the way out: it was not killed.
    assert any(r.get("event") == "worker_stopped" for r in first.log_records())

    logger.proc = logger.start()
    wait_until(lambda: count(engine, service) == 2000, 90, what="all 2000 rows", proc=logger.proc)
    with engine.connect() as connection:
        distinct = connection.scalar(select(func.count(func.distinct(LogRecord.event)))
                                     .where(LogRecord.service == service))
    assert distinct == 2000


async def test_query_logs_rpc_answers_like_the_cli(logger, amqp_channel, engine, logger_amqp_uri):
    """logger.query_logs (the admin console's archive search through the gateway): the same
    filters as the command line, bad ones named in a validation error, over nameko's wire."""
    from parley_common.errors import NotFound, ValidationFailed
    from parley_common.rpc import AsyncRpcClient

    service = f"r-{uuid.uuid4().hex[:6]}"
    for record in (make_record(service, "info", "rpc_old", ago=timedelta(hours=3)),
                   make_record(service, "info", "rpc_info", ago=timedelta(minutes=5)),
                   make_record(service, "error", "rpc_error", ago=timedelta(minutes=3), code=9)):
        publish_record(amqp_channel, record)
    wait_until(lambda: count(engine, service) == 3, 30, what="3 rows", proc=logger.proc)
    client = AsyncRpcClient(logger_amqp_uri, caller="logger-tests", timeout=10)
    await client.start()
    try:
        async def events(**filters):
            records = await client.call("logger", "query_logs", {"service": service, **filters})
            return [record["event"] for record in records]

        assert await events(since="10m") == ["rpc_error", "rpc_info"]
        assert await events(min_level="error") == ["rpc_error"]
        assert await events(level="info", since="4h", until="1h") == ["rpc_old"]
        assert await events(event="RPC_", limit=1) == ["rpc_error"]
        (record,) = await client.call("logger", "query_logs", {"service": service,
                                                               "level": "error"})
        assert record["fields"] == {"code": 9} and record["ts"].endswith("Z")
        with pytest.raises(ValidationFailed) as refused:
            await client.call("logger", "query_logs", {"since": "yesterday-ish", "level": "loud",
                                                       "limit": 0, "colour": "red"})
        assert set(refused.value.details) == {"since", "level", "limit", "colour"}
        with pytest.raises(NotFound):
            await client.call("logger", "drop_everything")
    finally:
        await client.close()


def test_a_record_the_database_refuses_does_not_stall_the_archive(logger, engine, monkeypatch):
    """NaN, infinities and unpaired surrogates (what Python's json reads but PostgreSQL's json
    refuses) are stored as text; a record the database still refuses is kept as a malformed
    record with its content as text, and the rest of its batch is stored with it."""
    from sqlalchemy.orm import sessionmaker

    from parley_common.worker import Delivery
    from parley_logger import consumers, records
    from parley_logger.consumers import ArchiveConsumer

    service = f"odd-{uuid.uuid4().hex[:6]}"
    archive = ArchiveConsumer(sessionmaker(engine))

    def delivery(tag: int, event: str, body: str) -> Delivery:
        record = ('{"ts": "%s", "service": "%s", "level": "info", "event": "%s", "value": %s}'
                  % (datetime.now(timezone.utc).isoformat(), service, event, body))
        return Delivery(tag, f"{service}.info", record.encode(), False)

    archive.handle_batch([delivery(1, "nan", "NaN"), delivery(2, "inf", "-Infinity"),
                          delivery(3, "surrogate", '"\\ud800x"')])
    stored = {row.event: row.fields["value"] for row in rows(engine, service)}
    assert stored == {"nan": "nan", "inf": "-inf", "surrogate": "?x"}

    real_to_row = records.to_row

    def unstorable_to_row(body, routing_key=""):  # a value the cleaning let through
        row = real_to_row(body, routing_key)
        if row["event"] == "poison":
            row["fields"]["value"] = float("nan")
        return row

    monkeypatch.setattr(consumers, "to_row", unstorable_to_row)
    archive.handle_batch([delivery(4, "poison", "1"), delivery(5, "after", "2")])
    events = {row.event: row for row in rows(engine, service)}
    assert events["after"].fields["value"] == 2
    refused = events[records.MALFORMED_EVENT]
    assert refused.fields["original_event"] == "poison"
    assert refused.fields["reason"].startswith("refused by the database")
    assert archive.counts["malformed"] == 1
