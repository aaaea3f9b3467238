"""A stand-in for Lambda's ``snapshot_restore_py`` (SnapStart's runtime hooks), for a script in a fresh interpreter.

``STAND_IN`` is Python source to put at the top of such a script: it installs a ``snapshot_restore_py`` module whose
``register_before_snapshot`` and ``register_after_restore`` record each hook as (function, args, kwargs) in
``hooks.before`` and ``hooks.after``, without running it, so that the rest of the script imports a handler module
and runs its hooks as a snapshot and a restore would (the benchmark times them, the template's tests check them).
"""

STAND_IN = """
import sys, types
hooks = types.ModuleType("snapshot_restore_py")
hooks.before, hooks.after = [], []
hooks.register_before_snapshot = lambda f, *a, **k: hooks.before.append((f, a, k)) or f
hooks.register_after_restore = lambda f, *a, **k: hooks.after.append((f, a, k)) or f
sys.modules["snapshot_restore_py"] = hooks
"""
