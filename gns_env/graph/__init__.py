"""Model -> operator graph (static structure) and per-decision node features."""

from gns_env.graph.builder import ModelGraph, build_graph

__all__ = ["ModelGraph", "build_graph"]
