"""Reward redistribution between validations (paper Eq. 3).

The env validates only at some decisions (probability p) and pays the metric change there.
Eq. 3 spreads each change evenly over the decisions since the previous validation:
``r'_t = (P_t2 - P_t1) / (t2 - t1)`` for ``t in [t1, t2)``. Learners apply
:func:`spread_rewards` to a stored trajectory before computing returns.
"""

from __future__ import annotations

import numpy as np


def spread_rewards(rewards: np.ndarray, segment_ends: np.ndarray) -> np.ndarray:
    """Spread rewards evenly over each segment, along axis 0.

    :param rewards: ``(T,)`` or ``(T, n_envs)`` rewards in time order.
    :param segment_ends: same shape, bool: True at a step that closes a segment (a validated
        decision or the last step of an episode).
    :return: a new array; in each segment ``(previous end, this end]`` every step gets the
        segment's mean reward. Steps after the last end (a segment still open, whose
        validation lies in the future) keep their rewards, so the total is always preserved.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    ends = np.asarray(segment_ends, dtype=bool)
    if rewards.shape != ends.shape:
        raise ValueError(f"rewards {rewards.shape} and segment_ends {ends.shape} must have the same shape")
    out = rewards.copy()
    columns = out.reshape(len(out), -1)
    for column, column_ends in zip(columns.T, ends.reshape(len(ends), -1).T):
        start = 0
        for t in np.flatnonzero(column_ends):
            column[start : t + 1] = column[start : t + 1].sum() / (t + 1 - start)
            start = t + 1
    return columns.reshape(out.shape)
