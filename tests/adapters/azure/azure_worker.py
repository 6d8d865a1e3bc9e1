"""The Azure Functions Python worker's own loading and calling, in this process: the app is indexed by
azure-functions-runtime's loader and function registry (what the worker does when the host starts it, and where
it refuses a function with FunctionLoadError), and each function is called the way the worker calls it: bindings
by name, plus a ``context`` made by the worker's own Context class when the function declares one.

azure-functions-runtime is the worker of Python 3.13+ apps; `make install` installs it here (3.11) without its
Python check. The indexing rules it applies are those of the worker the host bundles for 3.10-3.12.
"""

from __future__ import annotations

import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The two enum values of the host's FunctionRpc.proto that indexing reads (BindingInfo.Direction): the worker
# receives the generated classes from the host, which is not here.
_PROTOS = types.SimpleNamespace(BindingInfo=types.SimpleNamespace(**{"in": 0, "out": 1, "inout": 2}))


@dataclass(frozen=True)
class WorkerFunction:
    declared: Any  # azure.functions' Function: its bindings, as the app's decorators declared them
    info: Any  # the worker's FunctionInfo: what it will pass, and whether it takes a context

    def call(self, invocation_id: str = "00000000-0000-0000-0000-000000000000", **bindings: Any) -> Any:
        """Run the function as the worker does, with its bindings' values by name."""
        from azure_functions_runtime.bindings.context import Context
        from azure_functions_runtime.bindings.retrycontext import RetryContext
        from azure_functions_runtime.bindings.tracecontext import TraceContext

        if self.info.requires_context:
            trace, retry = TraceContext("", "", {}), RetryContext(0, 0, None)  # type: ignore[arg-type]
            bindings["context"] = Context(
                self.info.name, self.info.directory, invocation_id, threading.local(), trace, retry
            )
        return self.info.func(**bindings)


def load(app_dir: Path) -> dict[str, WorkerFunction]:
    """The app's functions, from a fresh import of app_dir/function_app.py, as the worker indexes them."""
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry
    from azure_functions_runtime.loader import index_function_app

    load_binding_registry()
    sys.modules.pop("function_app", None)  # each test's settings: the module reads them when it is imported
    sys.path.insert(0, str(app_dir))
    try:
        indexed = index_function_app(str(app_dir / "function_app.py"))
    finally:
        sys.path.remove(str(app_dir))
    registry = Registry()
    return {f.get_function_name(): WorkerFunction(f, registry.add_indexed_function(f, _PROTOS)) for f in indexed}
