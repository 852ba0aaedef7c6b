"""Consumer lag bookkeeping: log-end offset minus the next offset to judge, per partition."""

from __future__ import annotations

from services.anomaly.lag import ConsumerProgress


def test_lag_counts_the_records_after_the_last_judged_one():
    progress = ConsumerProgress()
    progress.judged(("r", 0), 41)  # offsets 0..41 judged: 42 is next
    progress.judged(("r", 1), 9)
    assert progress.lag([("r", 0), ("r", 1)], {("r", 0): 50, ("r", 1): 10}, {}) == {("r", 0): 8, ("r", 1): 0}


def test_the_position_stands_in_until_a_partition_judges_its_first_reading():
    progress = ConsumerProgress()
    progress.judged(("r", 0), 99)
    # Partition 1 judged nothing yet: its position (where it resumes) counts; a judged offset wins over a position.
    assert progress.lag([("r", 0), ("r", 1)], {("r", 0): 100, ("r", 1): 300},
                        {("r", 0): 60, ("r", 1): 120}) == {("r", 0): 0, ("r", 1): 180}


def test_unknown_offsets_are_left_out_and_lag_is_never_negative():
    progress = ConsumerProgress()
    progress.judged(("r", 0), 10)
    assert progress.lag([("r", 0), ("r", 1), ("r", 2)], {("r", 0): 5, ("r", 2): 7}, {("r", 1): 3}) == {("r", 0): 0}


def test_a_rebalance_forgets_what_was_judged_before():
    progress = ConsumerProgress()
    progress.judged(("r", 0), 10)
    progress.assigned()  # resumes from the committed offset, which the position then tells
    assert progress.lag([("r", 0)], {("r", 0): 20}, {("r", 0): 5}) == {("r", 0): 15}
