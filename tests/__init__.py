"""Test package: lets test modules share helpers as ``tests.<module>``."""
