"""The learning side of gns-env: the GNS encoder and policy for Stable-Baselines3, PPO with
Eq. 3 reward spreading, hand-designed schedules, and tools to apply and compare schedulers.

Imports go one way: ``agents`` uses ``gns_env``, never the reverse.
"""
