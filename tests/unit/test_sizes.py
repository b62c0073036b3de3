from edge.formats.sizes import record_meta_size, record_size, varint_len
from edge.store.ring import fifo_victims, fits

OCT = "application/octet-stream"


def test_varint():
    assert [varint_len(n) for n in (0, 127, 128, 16383, 16384)] == [1, 1, 2, 2, 3]


def test_spec_sizes():
    assert record_size(1_000_000, 0, 8, OCT, {}, False) == 40
    assert record_size(2_000_000, 0, 11, OCT, {}, False) == 43
    assert record_size(5_000_000, 0, 11, OCT, {}, False) + record_size(6_000_000, 11, 11, OCT, {}, False) == 88
    lab = {"number": "1"}
    e1 = record_size(5_000_000, 0, 11, OCT, lab, False) + record_size(6_000_000, 11, 11, OCT, lab, False)
    assert e1 == 114
    e2 = e1 + record_size(7_000_000, 22, 11, OCT, lab, False)
    assert e2 == 172


def test_updated_adds_two():
    assert record_meta_size(1, 0, 1, "", {}, True) == record_meta_size(1, 0, 1, "", {}, False) + 2


def test_ring():
    assert fits(5, 5, 10) and not fits(6, 5, 10)
    assert fifo_victims(5, 5, 10, iter([])) == []
    assert fifo_victims(10, 5, 10, iter([("a", 3), ("b", 3), ("c", 3)])) == ["a", "b"]
    assert fifo_victims(10, 5, 10, iter([("a", 1)])) is None
