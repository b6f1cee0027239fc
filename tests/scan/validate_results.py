#!/usr/bin/python3
"""Validates every JSON document in an earshot results folder against the
schemas in docs/schema/ (Debian's python3-jsonschema).

usage: validate_results.py SCHEMA_DIR RESULTS_DIR_OR_FILE...
Prints "validated N documents" and exits 0, or prints each problem and exits 1.
"""
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("python3-jsonschema is missing: apt-get install python3-jsonschema")


def main():
    schema_dir = pathlib.Path(sys.argv[1])
    schemas = {}
    for path in schema_dir.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        schemas[schema["$id"]] = schema
    by_type = {}
    for schema in schemas.values():
        kind = schema["properties"]["type"]["const"]
        by_type[kind] = schema
    resolver_store = dict(schemas)

    files = []
    for arg in sys.argv[2:]:
        p = pathlib.Path(arg)
        files += sorted(p.rglob("*.json")) if p.is_dir() else [p]
    problems = 0
    validated = 0
    for f in files:
        if ".outbox" in f.parts:
            continue
        doc = json.loads(f.read_text())
        schema = by_type.get(doc.get("type"))
        if schema is None:
            print(f"{f}: unknown document type {doc.get('type')!r}")
            problems += 1
            continue
        cls = jsonschema.validators.validator_for(schema)
        resolver = jsonschema.RefResolver.from_schema(schema, store=resolver_store)
        validator = cls(schema, resolver=resolver, format_checker=jsonschema.FormatChecker())
        for error in validator.iter_errors(doc):
            print(f"{f}: {'/'.join(str(x) for x in error.absolute_path)}: {error.message}")
            problems += 1
        validated += 1
    print(f"validated {validated} documents, {problems} problems")
    return 1 if problems or validated == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
