"""Forwarders: an old function object that keeps its identity and runs a new function.

A function's closure is fixed when it is made: when an edit changes which free variables
a function uses (a method starting to call zero-argument ``super()``, a function whose
new body reads another variable of its enclosing scope), its old object cannot take the
new code. It takes the code of ``def f(*args, **kwargs): return target(*args, **kwargs)``
instead, compiled with exactly its free variables (CPython checks their number when
``__code__`` is assigned), with the new function in its keyword-only defaults and in
``__wrapped__`` (so ``inspect.signature`` shows the new signature). Everything that held
the old object (imports elsewhere, registries, bound methods) runs the new behaviour.
"""

from __future__ import annotations

from types import CodeType, FunctionType

__all__ = ["NAME", "TARGET", "forwarder_code", "target_of"]

NAME = "__hotmod_forwarder__"  # the forwarder's ``co_name``
TARGET = "__hotmod_target__"  # its keyword-only parameter, holding the function it calls

_CODES: dict[tuple[str, ...], CodeType | None] = {}


def forwarder_code(freevars: tuple[str, ...]) -> CodeType | None:
    """The forwarder's code with exactly these free variables, or None."""
    if freevars in _CODES:
        return _CODES[freevars]
    plain = [n for n in freevars if n != "__class__"]
    lines = ["def __hotmod_outer__():"]
    if plain:
        lines.append(f"    {' = '.join(plain)} = None")
    indent = "    "
    if "__class__" in freevars:
        lines.append("    class __hotmod_scope__:")
        indent = "        "
    lines.append(f"{indent}def {NAME}(*args, {TARGET}, **kwargs):")
    if freevars:
        lines.append(f"{indent}    {', '.join(freevars)}")
    lines.append(f"{indent}    return {TARGET}(*args, **kwargs)")
    found: CodeType | None = None
    try:
        module = compile("\n".join(lines) + "\n", "<hotmod forwarder>", "exec", dont_inherit=True)
    except SyntaxError:
        module = None
    stack = [module] if module is not None else []
    while stack:
        current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, CodeType):
                if const.co_name == NAME and const.co_freevars == freevars:
                    found = const
                stack.append(const)
    _CODES[freevars] = found
    return found


def target_of(fn: FunctionType) -> FunctionType | None:
    """The function ``fn`` forwards to, when it is a forwarder."""
    if fn.__code__.co_name != NAME:
        return None
    target = (fn.__kwdefaults__ or {}).get(TARGET)
    return target if isinstance(target, FunctionType) else None
