"""Validates FHIR R4 JSON files with fhir.resources 6.4.0 (pydantic < 2, R4 4.0.1 models).
Usage: python models.py FILE...   Prints "ok FILE" or "FAIL FILE: error"; exit 1 on any failure."""
import json
import sys

from fhir.resources import construct_fhir_element

failed = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        construct_fhir_element(data["resourceType"], data)
        print(f"ok {path}")
    except Exception as e:  # pydantic.ValidationError and friends
        failed += 1
        print(f"FAIL {path}: {str(e)[:2000]}")
sys.exit(1 if failed else 0)
