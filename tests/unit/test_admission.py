"""edge/server/admission.py: whom to shed when the connection slots are full."""

from edge.server.admission import Admission, IdleQueue, admit


def test_under_the_limit_nothing_is_shed():
    assert admit(0, 0, 4, 8) == Admission(0, True)
    assert admit(3, 3, 4, 8) == Admission(0, True)  # the newcomer takes the last slot


def test_at_the_limit_one_idle_connection_makes_room():
    assert admit(4, 2, 4, 8) == Admission(1, True)
    assert admit(4, 4, 4, 8) == Admission(1, True)


def test_over_the_limit_idle_ones_are_shed_back_down_to_it():
    assert admit(6, 10, 4, 8) == Admission(3, True)
    assert admit(6, 1, 4, 8) == Admission(1, True)  # only what is idle


def test_nothing_idle_admits_up_to_the_hard_limit_then_refuses():
    assert admit(4, 0, 4, 8) == Admission(0, True)
    assert admit(7, 0, 4, 8) == Admission(0, True)
    assert admit(8, 0, 4, 8) == Admission(0, False)
    assert admit(8, 1, 4, 8) == Admission(1, True)  # one idle is enough to stay at the limit


def test_a_refusal_never_sheds():
    for open_conns in range(0, 9):  # never above the hard limit (8)
        for idle in range(0, open_conns + 1):
            d = admit(open_conns, idle, 4, 8)
            assert d.keep or d.shed == 0, (open_conns, idle, d)
            assert 0 <= d.shed <= idle


def test_idle_queue_yields_the_longest_idle_first():
    q = IdleQueue()
    for name in "abcd":
        q.park(name)
    q.unpark("a")  # it received a request
    q.park("a")  # ... and is idle again, now the most recent
    q.unpark("zz")  # unknown: ignored
    assert len(q) == 4 and "b" in q
    assert [q.pop_oldest() for _ in range(5)] == ["b", "c", "d", "a", None]
    assert len(q) == 0
