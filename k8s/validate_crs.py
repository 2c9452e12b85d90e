"""Validates the custom resources of a rendered overlay against the CRD schemas in k8s/crds/.

kubernetes-validate knows only Kubernetes' own kinds; this covers the others. Validation is
strict, as `kubernetes-validate --strict` is for built-in kinds: a field the schema does not
declare is an error (unless the schema preserves unknown fields there). A custom resource of
a kind with no schema here is an error too, so that nothing goes unchecked.

    python k8s/validate_crs.py RENDERED.yaml
"""
import copy
import glob
import os
import sys

import jsonschema
import yaml


def load_schemas(directory):
    """(group, version, kind) -> openAPIV3Schema, from every CRD file in `directory`."""
    schemas = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        for crd in yaml.safe_load_all(open(path)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (spec["group"], version["name"], spec["names"]["kind"])
                schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema):
    """`schema` with undeclared properties refused wherever it declares some."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        props = node.get("properties")
        if (props is not None and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for child in (props or {}).values():
            walk(child)
        for key in ("items", "additionalProperties"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, []):
                walk(child)

    walk(schema)
    # A resource's metadata is checked by the API server, not by the CRD.
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


def main(rendered):
    here = os.path.dirname(os.path.abspath(__file__))
    schemas = load_schemas(os.path.join(here, "crds"))
    problems, checked = [], 0
    for doc in yaml.safe_load_all(open(rendered)):
        if not doc:
            continue
        group, _, version = doc["apiVersion"].rpartition("/")
        if "." not in group or group.endswith(".k8s.io"):
            continue  # a built-in kind: kubernetes-validate's
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        schema = schemas.get((group, version, doc["kind"]))
        if schema is None:
            problems.append(f"{name}: no schema for {doc['apiVersion']} {doc['kind']} in k8s/crds")
            continue
        validator = jsonschema.Draft4Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path)
            problems.append(f"{name}: {where}: {error.message}")
        checked += 1
    if problems:
        sys.exit(f"{rendered}:\n  " + "\n  ".join(problems))
    print(f"{checked} custom resources valid against their CRD schemas")


if __name__ == "__main__":
    main(sys.argv[1])
