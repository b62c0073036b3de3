"""The durable mail outbox (edge.mail.outbox): files, states, crash recovery, limits, pruning."""

from __future__ import annotations

import json
import os

import pytest

from edge import durable
from edge.errors import StorageIOError
from edge.mail.outbox import FAILED, KEEP_FINISHED_S, QUEUED, SENDING, SENT, Outbox


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _queue(box: Outbox, token: str = "t", kind: str = "share", **kw):
    return box.enqueue(kind=kind, token=token, sender="edge@example.com", recipients=["a@example.com"],
                       subject="s", raw="From: x\r\n\r\nbody\r\n", **kw)


def test_queue_is_durable_and_ordered(tmp_path):
    clock = Clock()
    box = Outbox.open(tmp_path, clock=clock)
    mails = []
    for _ in range(3):
        mails.append(_queue(box))
        clock.t += 0.001
    files = sorted(p.name for p in (tmp_path / ".edge" / "outbox").iterdir())
    assert files == sorted(f"{m.id}.json" for m in mails)
    assert all(oct(os.stat(tmp_path / ".edge" / "outbox" / f).st_mode)[-3:] == "600" for f in files)
    again = Outbox.open(tmp_path, clock=clock)
    assert [m.id for m in again.due()] == [m.id for m in mails]
    assert again.get(mails[0].id) == mails[0]
    assert "raw" not in again.get(mails[0].id).describe()


def test_states_and_retry_times(tmp_path):
    clock = Clock()
    box = Outbox.open(tmp_path, clock=clock)
    m = _queue(box)
    assert box.next_due_at() == clock.t
    assert box.mark_sending(m.id).state == SENDING and box.get(m.id).attempts == 1
    assert box.due() == []
    box.mark_retry(m.id, "421 busy", clock.t + 10)
    assert box.get(m.id).state == QUEUED and box.due() == [] and box.next_due_at() == clock.t + 10
    clock.t += 10
    assert [x.id for x in box.due()] == [m.id]
    box.mark_retry(m.id, "connection refused", clock.t + 5, count_attempt=True)
    assert box.get(m.id).attempts == 2
    box.mark_sending(m.id)
    done = box.mark_sent(m.id)
    assert (done.state, done.attempts, done.last_error, done.sent_at) == (SENT, 3, None, clock.t)
    f = _queue(box)
    box.mark_failed(f.id, "550 no such user" + "x" * 1000, count_attempt=True)
    reopened = Outbox.open(tmp_path, clock=clock)
    assert reopened.get(done.id).state == SENT
    failed = reopened.get(f.id)
    assert failed.state == FAILED and failed.attempts == 1 and len(failed.last_error) == 500
    assert reopened.next_due_at() is None


def test_crash_while_sending_queues_again(tmp_path):
    """A mail whose SMTP transaction may or may not have finished is sent again (at most twice)."""
    box = Outbox.open(tmp_path)
    m = _queue(box)
    box.mark_sending(m.id)
    reopened = Outbox.open(tmp_path)       # the process died here
    again = reopened.get(m.id)
    assert again.state == QUEUED and again.attempts == 1 and again.next_attempt_at == 0.0
    assert any("queued again" in line for line in reopened.load_report)
    raw = (tmp_path / ".edge" / "outbox" / f"{m.id}.json").read_bytes()
    assert json.loads(durable.unseal(raw)[0])["state"] == QUEUED


def test_torn_and_foreign_files_are_skipped(tmp_path):
    box = Outbox.open(tmp_path)
    m = _queue(box)
    d = tmp_path / ".edge" / "outbox"
    (d / ".x.json.abc.tmp").write_text("{")
    (d / "00000000000000001-deadbeef.json").write_text("{not json")
    (d / "00000000000000002-deadbeef.json").write_text(json.dumps({"v": 99}))
    reopened = Outbox.open(tmp_path)
    assert [x.id for x in reopened.list()] == [m.id]
    assert len(reopened.load_report) == 2 and not (d / ".x.json.abc.tmp").exists()


def test_hourly_counts_and_receipt_marks(tmp_path):
    clock = Clock()
    box = Outbox.open(tmp_path, clock=clock)
    for _ in range(3):
        _queue(box, token="alice")
    _queue(box, token="bob")
    _queue(box, token="alice", kind="receipt", link_ids=("L1",), covers_until=clock.t - 5)
    _queue(box, token="alice", kind="receipt", link_ids=("L1",), covers_until=clock.t - 1)
    assert box.count_since("alice", clock.t - 3600) == 3
    clock.t += 3601
    _queue(box, token="alice")
    assert box.count_since("alice", clock.t - 3600) == 1
    assert Outbox.open(tmp_path).receipt_marks() == {"L1": 1_700_000_000.0 - 1}


def test_prune_keeps_queued_and_recent(tmp_path):
    clock = Clock()
    box = Outbox.open(tmp_path, clock=clock)
    old_sent, old_failed, queued = _queue(box), _queue(box), _queue(box)
    box.mark_sending(old_sent.id)
    box.mark_sent(old_sent.id)
    box.mark_failed(old_failed.id, "550")
    clock.t += KEEP_FINISHED_S + 1
    fresh = _queue(box)
    box.mark_sending(fresh.id)
    box.mark_sent(fresh.id)
    assert box.prune() == 2
    assert {m.id for m in Outbox.open(tmp_path).list()} == {queued.id, fresh.id}


def test_unwritable_outbox_raises_storage_error(tmp_path):
    (tmp_path / ".edge").mkdir()
    (tmp_path / ".edge" / "outbox").write_text("a file where the folder should be")
    box = Outbox(tmp_path)
    with pytest.raises(StorageIOError):
        _queue(box)
