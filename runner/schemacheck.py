"""A JSON Schema's yes or no, fast: the schema compiled to Python code (fastjsonschema).

jsonschema builds a validator object at every keyword of every item: at 100,000
tasks, or a summary of 10,000, most of a whole pass. The compiled check only
says yes or no; after a no, jsonschema says where and why, and has the last
word. So a yes must never be given to a document jsonschema refuses:
tests/test_load.py holds the two to the same verdicts on the task-file schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compiled(schema: dict) -> Callable[[Any], bool]:
    """data -> whether `schema` accepts it."""
    import fastjsonschema

    # use_default=False: it would otherwise write the schema's defaults into the data.
    validate = fastjsonschema.compile(schema, use_default=False, use_formats=False)

    def check(data: Any) -> bool:
        try:
            validate(data)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check
