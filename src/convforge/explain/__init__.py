"""Interpreters of what a network computes: LinearScope, its exact affine map around one input."""

from convforge.explain.linear_scope import LinearScope, ScopeOutput, UnsupportedOperationError

__all__ = ["LinearScope", "ScopeOutput", "UnsupportedOperationError"]
