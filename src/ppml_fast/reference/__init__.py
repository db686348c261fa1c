"""Pure-numpy / pure-Python oracles: obviously correct, slow on purpose.

Tests assert native == reference; benchmarks time both. Public API modules never import
this package.
"""
