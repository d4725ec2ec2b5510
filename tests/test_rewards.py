import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gns_env.rewards import spread_rewards


def test_eq3_spreads_each_change_over_its_segment():
    # validations at steps 2 and 4: (0 + 0 + 0.3) / 3 each, then (0 + 0.1) / 2 each
    rewards = np.array([0.0, 0.0, 0.3, 0.0, 0.1])
    ends = np.array([False, False, True, False, True])
    np.testing.assert_allclose(spread_rewards(rewards, ends), [0.1, 0.1, 0.1, 0.05, 0.05])


def test_open_segment_at_the_end_keeps_its_rewards():
    rewards = np.array([0.0, 0.4, 0.0, 0.0])
    ends = np.array([False, True, False, False])
    np.testing.assert_allclose(spread_rewards(rewards, ends), [0.2, 0.2, 0.0, 0.0])


def test_columns_are_independent_envs():
    rewards = np.array([[0.0, 1.0], [0.6, 0.0], [0.0, 0.0]])
    ends = np.array([[False, True], [True, False], [True, True]])
    np.testing.assert_allclose(spread_rewards(rewards, ends), [[0.3, 1.0], [0.3, 0.0], [0.0, 0.0]])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        spread_rewards(np.zeros(3), np.zeros(4, bool))


@given(
    arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 4)), elements=st.floats(-1, 1)),
    st.data(),
)
def test_spreading_preserves_the_sum_per_env(rewards, data):
    ends = data.draw(arrays(np.bool_, rewards.shape))
    spread = spread_rewards(rewards, ends)
    np.testing.assert_allclose(spread.sum(axis=0), rewards.sum(axis=0), atol=1e-9)
