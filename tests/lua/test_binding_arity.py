"""Every binding's declaration tells the truth about which arguments it needs.

Completion, signature help, lint and the API reference all read the declared
parameters; a parameter declared optional that the call cannot do without (or
the reverse) misleads all of them at once. Each binding is called in the
sandbox with one argument left out at a time and the error is compared with
the declaration.
"""

from __future__ import annotations

import json

from oktoscripts.bindings import all_bindings

# A value of each declared type that passes the type check (what the call then
# does with it, a missing device for instance, does not matter here).
SAMPLES = {
    "string": '"x"',
    "number": "0",
    "integer": "1",
    "boolean": "true",
    "table": "{}",
    "function": "function() end",
    "any": "0",
}


def _call(name: str, args: list[str]) -> str:
    """Lua that calls ``name`` under pcall and keeps its error text."""
    return (
        f"do local ok, err = pcall({name}, {', '.join(args)})\n"
        f"errors[#errors + 1] = {{{json.dumps(name)}, ok and '' or tostring(err)}} end\n"
    )


def _cases() -> list[tuple[str, int, bool, list[str]]]:
    """(binding, 1-based argument, declared optional, the call's arguments with
    that one nil and every other required one given)."""
    cases = []
    for b in all_bindings():
        required = [SAMPLES[p.type] if not p.optional else "nil" for p in b.params]
        for index, param in enumerate(b.params):
            args = list(required)
            args[index] = "nil"
            # A trailing run of nils is the same as leaving them out.
            cases.append((b.name, index + 1, param.optional, args))
    return cases


async def test_declared_arity_matches_what_each_binding_needs(run_lua):
    cases = _cases()
    source = "errors = {}\n" + "".join(_call(n, a) for n, _, _, a in cases) + "return errors\n"
    outcome, _, _ = await run_lua(source, name="arity")
    assert outcome.status == "succeeded", outcome.error
    wrong = []
    for (name, number, optional, _), (_, error) in zip(cases, outcome.result, strict=True):
        refused_nil = f"{name}: argument #{number} " in error and error.endswith("got nil")
        if optional and refused_nil:
            wrong.append(f"{name} argument #{number} is declared optional but needed: {error}")
        if not optional and not refused_nil:
            wrong.append(
                f"{name} argument #{number} is declared required but nil passed: "
                f"{error or 'no error'}"
            )
    assert not wrong, "\n".join(wrong)


def test_message_type_is_declared_required() -> None:
    by_name = {b.name: b for b in all_bindings()}
    for name in ("send_cwmp_message", "send_cwmp_async_message"):
        params = by_name[name].params
        assert [p.optional for p in params] == [False, False, False]
        assert by_name[name].signature == f"{name}(serial, xml_payload, message_type)"
