"""Run a function right after a named module is imported.

Shared by the kernel's and the training job's start-up code, which both
adjust a library the moment student code first imports it, and never earlier
(importing sagemaker or xgboost eagerly would slow every start).
"""

import importlib.abc
import sys


class AfterImport(importlib.abc.MetaPathFinder):
    """A meta-path finder that wraps the loader of each hooked module."""

    def __init__(self, hooks):
        self.hooks = dict(hooks)

    def find_spec(self, fullname, path=None, target=None):
        hook = self.hooks.get(fullname)
        if hook is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return None
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                hook(module)
            except Exception:  # an observer must never break the import
                pass

        spec.loader.exec_module = exec_module
        return spec


def install(hooks, position=0):
    sys.meta_path.insert(position, AfterImport(hooks))
