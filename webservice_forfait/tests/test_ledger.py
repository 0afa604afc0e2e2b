import datetime as dt
import re
import unittest

from hypothesis import given
from hypothesis import strategies as st

from webservice_forfait.ledger import (
    ROUNDING_METHODS, ROUNDING_UNITS, ZERO, allocate, format_duration,
    format_hours, round_duration, year_end)

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


def parse_hours(text):
    "Read back a duration written by format_hours, to the minute"
    match = re.fullmatch(r'(-?)(\d+) h(?: (\d\d))?', text)
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    return dt.timedelta(minutes=-minutes if match.group(1) else minutes)


class FormatHoursTestCase(unittest.TestCase):
    "What clients read: 12 h, 1 h 15, 0 h 45, -2 h"

    def test_examples(self):
        for duration, text in [
                (dt.timedelta(hours=12), '12 h'),
                (dt.timedelta(hours=1, minutes=15), '1 h 15'),
                (dt.timedelta(minutes=45), '0 h 45'),
                (dt.timedelta(hours=-2), '-2 h'),
                (dt.timedelta(hours=-1, minutes=-15), '-1 h 15'),
                (dt.timedelta(minutes=5), '0 h 05'),
                (dt.timedelta(days=2), '48 h'),
                (ZERO, '0 h'),
                (dt.timedelta(seconds=-59), '0 h'),
                ]:
            with self.subTest(duration=duration):
                self.assertEqual(format_hours(duration), text)

    @given(st.integers(
            min_value=-10_000 * 3600, max_value=10_000 * 3600).map(
            lambda s: dt.timedelta(seconds=s)))
    def test_round_trip(self, duration):
        "Read back, it is the duration to the minute, toward zero"
        text = format_hours(duration)
        minutes = int(abs(duration).total_seconds()) // 60
        exact = dt.timedelta(minutes=minutes)
        self.assertEqual(
            parse_hours(text), -exact if duration < ZERO else exact)
        self.assertEqual(
            text.startswith('-'), duration < ZERO and minutes > 0)
        self.assertEqual(text == '0 h', not minutes)
        # the same minutes as the staff's h:mm
        self.assertEqual(
            format_duration(duration).lstrip('-').replace(':', ' h '),
            text.lstrip('-') if ' h ' in text
            else text.lstrip('-') + ' 00')
