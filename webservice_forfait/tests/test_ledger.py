import datetime as dt
import unittest

from hypothesis import given
from hypothesis import strategies as st

from webservice_forfait.ledger import (
    ROUNDING_METHODS, ROUNDING_UNITS, ZERO, allocate, format_duration,
    round_duration, year_end)

durations = st.integers(min_value=0, max_value=10_000 * 3600).map(
    lambda s: dt.timedelta(seconds=s))
units = st.sampled_from(ROUNDING_UNITS)
minimums = st.sampled_from([0, 5, 15, 30, 60]).map(
    lambda m: dt.timedelta(minutes=m))


class RoundingTestCase(unittest.TestCase):

    def test_examples(self):
        "1:10 is billed 1:15 by default, never below the minimum"
        minute = dt.timedelta(minutes=1)
        for spent, method, expected in [
                (70, 'up', 75), (75, 'up', 75), (76, 'up', 90),
                (67, 'nearest', 60), (68, 'nearest', 75), (74, 'down', 60),
                (1, 'up', 15), (1, 'down', 15), (0, 'up', 0)]:
            with self.subTest(spent=spent, method=method):
                self.assertEqual(
                    round_duration(spent * minute, '15', method, 15 * minute),
                    expected * minute)

    @given(durations, units, minimums)
    def test_up(self, spent, unit, minimum):
        billed = round_duration(spent, unit, 'up', minimum)
        if spent:
            self.assertGreaterEqual(billed, spent)
            self.assertGreaterEqual(billed, minimum)
            self.assertLess(
                billed - max(spent, minimum), dt.timedelta(minutes=int(unit)))
        else:
            self.assertEqual(billed, ZERO)

    @given(durations, units, st.sampled_from(ROUNDING_METHODS), minimums)
    def test_multiple_of_unit(self, spent, unit, method, minimum):
        billed = round_duration(spent, unit, method, minimum)
        if billed > minimum:
            self.assertEqual(billed % dt.timedelta(minutes=int(unit)), ZERO)
        self.assertLessEqual(
            abs(billed - spent),
            max(dt.timedelta(minutes=int(unit)), minimum))


class AllocationTestCase(unittest.TestCase):

    def test_split(self):
        "3:00 with 2:00 left is 2:00 from the credit and 1:00 overdraft"
        hour = dt.timedelta(hours=1)
        self.assertEqual(
            allocate(3 * hour, [('a', 2 * hour)]),
            [('a', 2 * hour), (None, hour)])
        self.assertEqual(
            allocate(3 * hour, [('a', ZERO), ('b', hour), ('c', 5 * hour)]),
            [('b', hour), ('c', 2 * hour)])

    @given(durations, st.lists(durations, max_size=5))
    def test_sum(self, billed, remainings):
        balances = list(enumerate(remainings))
        allocations = allocate(billed, balances)
        self.assertEqual(sum((p for _, p in allocations), ZERO), billed)
        for key, part in allocations:
            self.assertGreater(part, ZERO)
            if key is not None:
                self.assertLessEqual(part, remainings[key])
        overdraft = [p for k, p in allocations if k is None]
        if overdraft:
            self.assertEqual(overdraft[0], billed - sum(remainings, ZERO))
        keys = [k for k, _ in allocations if k is not None]
        self.assertEqual(keys, sorted(keys))


class YearEndTestCase(unittest.TestCase):

    def test_year_end(self):
        for start, end in [
                (dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
                (dt.date(2026, 1, 31), dt.date(2027, 1, 30)),
                (dt.date(2024, 2, 29), dt.date(2025, 2, 28)),
                (dt.date(2023, 3, 1), dt.date(2024, 2, 29)),
                (dt.date(2026, 11, 26), dt.date(2027, 11, 25)),
                ]:
            with self.subTest(start=start):
                self.assertEqual(year_end(start), end)

    def test_format(self):
        self.assertEqual(format_duration(dt.timedelta(hours=-2)), '-2:00')
        self.assertEqual(format_duration(dt.timedelta(hours=22, minutes=5)),
            '22:05')
        self.assertEqual(format_duration(dt.timedelta(days=2)), '48:00')
