"""Checks every request our own clients sent to moto against AWS's service
models (botocore's JSON models, the ones the official SDKs are generated
from): unknown members, missing required members, wrong types, enum values,
ranges and patterns, as botocore's ParamValidator judges them. moto accepts
much that AWS refuses; this is what AWS would say.

It reads moto recorder files (one JSON request per line: method, url,
headers, body), skips the tests' own boto3 calls, decodes each request of
the JSON, Query and EC2 protocols into the operation's parameters (walking
the input shape, as botocore's serializers wrote them) and validates them.
REST-XML requests (S3) are matched to their operation by method, path and
query as the model's requestUri says (path-style buckets), and decoded from
their URI labels, query string, headers and XML or text payload. Anything
else is counted as not checked.

usage: validate_requests.py RECORDING... ; exits 1 on any violation
"""

import base64
import json
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ElementTree

import botocore.session
from botocore.validate import ParamValidator

SERVICES = {"elasticloadbalancing": "elbv2"}
session = botocore.session.get_session()
models = {}


def model(signing_name):
    service = SERVICES.get(signing_name, signing_name)
    if service not in models:
        models[service] = session.get_service_model(service)
    return models[service]


class Flat:
    """The form fields of a Query or EC2 request, with the ones used marked."""

    def __init__(self, fields):
        self.fields = dict(fields)
        self.used = set()

    def has_prefix(self, prefix):
        return any(key == prefix or key.startswith(prefix + ".") for key in self.fields)

    def take(self, key):
        self.used.add(key)
        return self.fields[key]


def scalar(shape, text):
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def wire_name(member_name, shape, ec2):
    if ec2:
        name = shape.serialization.get("queryName") or shape.serialization.get("name") or member_name
        return name[0].upper() + name[1:]
    return shape.serialization.get("name", member_name)


def decode(shape, prefix, flat, ec2):
    """The value of `shape` at `prefix` in `flat`, or None when absent."""
    kind = shape.type_name
    if kind == "structure":
        value = {}
        for member_name, member in shape.members.items():
            key = wire_name(member_name, member, ec2)
            decoded = decode(member, f"{prefix}.{key}" if prefix else key, flat, ec2)
            if decoded is not None:
                value[member_name] = decoded
        return value if value or (prefix and prefix in flat.fields) else (value if not prefix else None)
    if kind == "list":
        if prefix in flat.fields and flat.fields[prefix] == "":
            flat.take(prefix)
            return []
        if ec2 or shape.serialization.get("flattened"):
            list_prefix = prefix
        else:
            list_prefix = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items, index = [], 1
        while flat.has_prefix(f"{list_prefix}.{index}"):
            items.append(decode(shape.member, f"{list_prefix}.{index}", flat, ec2))
            index += 1
        return items if items else None
    if kind == "map":
        full = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        value, index = {}, 1
        while flat.has_prefix(f"{full}.{index}"):
            key = decode(shape.key, f"{full}.{index}.{key_name}", flat, ec2)
            value[key] = decode(shape.value, f"{full}.{index}.{value_name}", flat, ec2)
            index += 1
        return value if value else None
    if prefix in flat.fields:
        return scalar(shape, flat.take(prefix))
    return None


def local(tag):
    return tag.rsplit("}", 1)[-1]


def xml_value(shape, element, where, unknown):
    """The value of `shape` in XML `element`; elements no member names are
    appended to `unknown`."""
    kind = shape.type_name
    if kind == "structure":
        value, names = {}, set()
        for member_name, member in shape.members.items():
            name = member.serialization.get("name", member_name)
            names.add(name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                items = [child for child in element if local(child.tag) == name]
                if items:
                    value[member_name] = [xml_value(member.member, item, f"{where}.{name}", unknown) for item in items]
                continue
            child = next((child for child in element if local(child.tag) == name), None)
            if child is not None:
                value[member_name] = xml_value(member, child, f"{where}.{name}", unknown)
        unknown.extend(f"{where}.{local(child.tag)}" for child in element if local(child.tag) not in names)
        return value
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        return [xml_value(shape.member, child, f"{where}.{item}", unknown) for child in element if local(child.tag) == item]
    if kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        value = {}
        for entry in element:
            key = next((c for c in entry if local(c.tag) == key_name), None)
            item = next((c for c in entry if local(c.tag) == value_name), None)
            if key is not None and item is not None:
                value[key.text or ""] = xml_value(shape.value, item, where, unknown)
        return value
    return scalar(shape, (element.text or "").strip())


def rest_operation(service, method, path, query):
    """The operation whose requestUri matches, the most specific first
    (`/{Bucket}?tagging` before `/{Bucket}`), with its URI labels and the
    query keys the URI itself names."""
    best = None
    # The Rust and JS SDKs name the operation (`?x-id=PutObject`) where
    # botocore's URIs alone cannot tell it (PutObject, CopyObject).
    named = query.get("x-id")
    for name in [named] if named in service.operation_names else service.operation_names:
        operation = service.operation_model(name)
        if operation.http.get("method") != method:
            continue
        template, _, literal = operation.http.get("requestUri", "/").partition("?")
        keys = [part.split("=", 1) for part in literal.split("&") if part]
        if any(key[0] not in query or (len(key) == 2 and query[key[0]] != key[1]) for key in keys):
            continue
        labels = re.findall(r"\{([^}]+)\}", template)
        pattern = re.sub(r"\\\{[^}]+\+\\\}", "(.+)", re.escape(template))
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", pattern)
        found = re.fullmatch(pattern, path) or re.fullmatch(pattern, path.rstrip("/") or "/")
        if found is None:
            continue
        # A deprecated operation shares its URI with its successor's
        # (PutBucketLifecycle, PutBucketLifecycleConfiguration).
        score = (len(keys), len(template), not operation.deprecated)
        if best is None or score > best[0]:
            values = {label.rstrip("+"): urllib.parse.unquote(value) for label, value in zip(labels, found.groups())}
            best = (score, operation, values, {key[0] for key in keys})
    return best


def rest_parameters(service, entry, headers, body):
    """(operation, params, unknown) of a REST-XML request, or None."""
    url = urllib.parse.urlsplit(entry["url"])
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    matched = rest_operation(service, entry["method"], url.path, query)
    if matched is None:
        return None
    _, operation, labels, literal = matched
    shape = operation.input_shape
    params, unknown, used_query = {}, [], set(literal) | {"x-id"}
    if shape is None:
        return operation, params, unknown
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        name = member.serialization.get("name", member_name)
        if location == "uri" and name in labels:
            params[member_name] = labels[name]
        elif location == "querystring" and name in query:
            used_query.add(name)
            params[member_name] = scalar(member, query[name])
        elif location == "header" and name.lower() in headers:
            params[member_name] = scalar(member, headers[name.lower()])
    payload = shape.serialization.get("payload")
    if payload and body:
        member = shape.members[payload]
        if member.type_name == "structure":
            root = ElementTree.fromstring(body)
            name = member.serialization.get("name", payload)
            if local(root.tag) != name:
                unknown.append(f"payload root <{local(root.tag)}>, not <{name}>")
            params[payload] = xml_value(member, root, name, unknown)
        else:
            params[payload] = body
    unknown.extend(f"query {key}" for key in sorted(set(query) - used_query))
    return operation, params, unknown


def parameters(entry):
    """(service, operation, params, unknown fields) of a recorded request,
    or None when its protocol is not checked here."""
    headers = {name.lower(): value for name, value in entry["headers"].items()}
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", ""))
    if scope is None:
        return None
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    service = model(scope.group(1))
    protocol = service.metadata["protocol"]
    target = headers.get("x-amz-target")
    if target and body.startswith("{"):
        operation = service.operation_model(target.rsplit(".", 1)[-1])
        return service, operation, json.loads(body), []
    if protocol in ("query", "ec2") and "Action=" in body:
        fields = urllib.parse.parse_qsl(body, keep_blank_values=True)
        flat = Flat(fields)
        operation = service.operation_model(flat.take("Action"))
        flat.take("Version")
        params = {}
        if operation.input_shape is not None:
            params = decode(operation.input_shape, "", flat, protocol == "ec2") or {}
        unknown = sorted(set(flat.fields) - flat.used)
        return service, operation, params, unknown
    if protocol == "rest-xml":
        decoded = rest_parameters(service, entry, headers, body)
        if decoded is not None:
            return (service, *decoded)
    return None


def main(paths):
    checked, skipped, violations = 0, 0, []
    operations = set()
    for path in paths:
        with open(path) as recording:
            for line in recording:
                if not line.strip():
                    continue
                entry = json.loads(line)
                agent = next((v for k, v in entry["headers"].items() if k.lower() == "user-agent"), "")
                if "Boto3" in agent or "Botocore" in agent:
                    continue
                decoded = parameters(entry)
                if decoded is None:
                    skipped += 1
                    continue
                service, operation, params, unknown = decoded
                checked += 1
                operations.add(f"{service.service_name}.{operation.name}")
                where = f"{path}: {service.service_name}.{operation.name}"
                for field in unknown:
                    violations.append(f"{where}: {field} is not a member of {operation.input_shape.name}")
                if operation.input_shape is not None:
                    report = ParamValidator().validate(params, operation.input_shape)
                    if report.has_errors():
                        violations.append(f"{where}: {report.generate_report()}")
    for violation in violations:
        print(violation)
    print(
        f"{checked} requests of {len(operations)} operations checked against botocore's models, "
        f"{skipped} not checked (neither JSON, Query nor REST-XML), {len(violations)} violations"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
