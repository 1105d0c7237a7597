"""The payload converter every leadflow client and worker uses: Temporal's default JSON
payloads, byte for byte, encoded and decoded for less CPU (BENCHMARKS.md)."""

from __future__ import annotations

import dataclasses
import typing
import weakref
from typing import Any

from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


class DataclassFields(JSONTypeConverter):
    """Decodes a dataclass as temporalio's JSON converter does, with each class's field
    types resolved once instead of on every decode.

    temporalio calls `typing.get_type_hints` (which evaluates every string annotation of
    the class and its bases) for each dataclass it decodes: for every `LoggedEvent`
    signal, `DecideResult` and `LeadState` (~9% of the worker's CPU, BENCHMARKS.md). The
    values are the default converter's. Weakly keyed: the tests' full sandbox re-imports
    `workflows.lead`, and so makes a new `LeadWorkflowInput` class, for every workflow."""

    def __init__(self) -> None:
        self._hints: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()
        # What `value_to_type` takes, for the fields' own dataclasses.
        self.converters: list[JSONTypeConverter] = [self]

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        # What `temporalio.converter.value_to_type` does for a dataclass, step for step.
        if not isinstance(value, dict):
            raise TypeError(f"Cannot convert to dataclass {hint}, value is {type(value)} not dict")
        hints = self._hints.get(hint)
        if hints is None:
            hints = self._hints[hint] = typing.get_type_hints(hint)
        field_values: dict[str, Any] = {}
        non_init_field_values: dict[str, Any] = {}
        for field in dataclasses.fields(hint):
            field_value = value.get(field.name, dataclasses.MISSING)
            if field_value is dataclasses.MISSING:
                continue  # required ones make the instantiation below fail
            try:
                converted = value_to_type(hints[field.name], field_value, self.converters)
            except Exception as err:
                raise TypeError(
                    f"Failed converting field {field.name} on dataclass {hint}"
                ) from err
            if field.init:
                field_values[field.name] = converted
            else:
                non_init_field_values[field.name] = converted
        decoded = hint(**field_values)
        for name, field_value in non_init_field_values.items():
            object.__setattr__(decoded, name, field_value)
        return decoded


class ShallowDataclassEncoder(AdvancedJSONEncoder):
    """temporalio's JSON encoder, minus a deep copy: it turns a dataclass into a dict with
    `dataclasses.asdict`, which copies every nested value before `json` walks it again;
    here the dict holds the fields' values themselves and `json` comes back here for each
    nested dataclass. The JSON text is the same (keys are sorted either way)."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {field.name: getattr(o, field.name) for field in dataclasses.fields(o)}
        return super().default(o)


class LeadPayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converter, its JSON encoding through
    `ShallowDataclassEncoder` and its decoding through `DataclassFields`."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(
                    encoder=ShallowDataclassEncoder,
                    custom_type_converters=_DATACLASS_FIELDS.converters,
                )
                if type(converter) is JSONPlainPayloadConverter
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


_DATACLASS_FIELDS = DataclassFields()  # one cache for every converter instance
# Every client and worker of leadflow's workflows (and the replays of their histories) use
# it; payloads stay byte for byte what the default converter makes.
LEAD_DATA_CONVERTER = DataConverter(payload_converter_class=LeadPayloadConverter)
