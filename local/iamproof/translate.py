#!/usr/bin/env python3
"""Print the IAM roles SAM makes of template.yaml, intrinsics resolved.

Usage: translate.py TEMPLATE < values.json

values.json maps what the roles' policies reference to real values:
"Table" (a Ref), "Table.Arn" (a GetAtt, or ${Table.Arn} in a Sub),
"AWS::Region", ... A reference missing from it is an error, so a new
reference in the template cannot pass unnoticed.

Output (stdout, JSON): {"<Function or StateMachine logical id>": {"Role":
"<role logical id>", "Policies": [{"PolicyName", "PolicyDocument"}],
"ManagedPolicyArns": [...]}}.

The translation is aws-sam-translator's own, run offline: CodeUri becomes an
s3:// string, DefinitionUri the parsed definition, and the managed-policy
loader (which would call IAM) is a stub: the template names managed
policies by ARN only (SAM adds them for Tracing and the Lambda basics).
Used by the IAM proof (iamproof_test.go); needs cfn-lint and
aws-sam-translator (pip install cfn-lint).
"""

import json
import os
import re
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: translate.py TEMPLATE < values.json")
    path = sys.argv[1]
    values = json.load(sys.stdin)
    os.environ.setdefault("AWS_DEFAULT_REGION", values.get("AWS::Region", "us-east-1"))
    try:
        from cfnlint.decode.cfn_yaml import load
        from samtranslator.translator.transform import transform
    except ImportError as e:
        sys.exit(f"translate.py: {e}: pip install cfn-lint (it brings aws-sam-translator)")

    tmpl = load(path)
    root = os.path.dirname(os.path.abspath(path))
    for name, res in tmpl["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://connmgr-iamproof/{name}.zip"
        elif res["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            with open(os.path.join(root, props.pop("DefinitionUri"))) as f:
                props["Definition"] = json.load(f)

    class NoManagedPolicies:
        def load(self):
            return {}

    out = transform(tmpl, {}, NoManagedPolicies())
    resources = out["Resources"]
    roles = {}
    for name, res in resources.items():
        if res["Type"] not in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            continue
        role_ref = res["Properties"].get("Role", res["Properties"].get("RoleArn"))
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            sys.exit(f"translate.py: {name}: role {role_ref!r} is not a role of this template")
        role_name = role_ref["Fn::GetAtt"][0]
        role = resources[role_name]["Properties"]
        roles[name] = {
            "Role": role_name,
            "Policies": [
                {"PolicyName": p["PolicyName"], "PolicyDocument": resolve(p["PolicyDocument"], values, f"{role_name}.{p['PolicyName']}")}
                for p in role.get("Policies", [])
            ],
            "ManagedPolicyArns": resolve(role.get("ManagedPolicyArns", []), values, role_name),
        }
    json.dump(roles, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def lookup(name, values, where):
    if name not in values:
        sys.exit(f"translate.py: {where} references {name}, which the values do not give")
    return values[name]


def resolve(v, values, where):
    """Replaces Ref, Fn::GetAtt and Fn::Sub by values; any other intrinsic is an error."""
    if isinstance(v, list):
        return [resolve(x, values, where) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, arg), = v.items()
        if k == "Ref":
            return lookup(arg, values, where)
        if k == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else arg
            return lookup(".".join(parts), values, where)
        if k == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], values, where))
            return SUB.sub(lambda m: local[m.group(1)] if m.group(1) in local else lookup(m.group(1), values, where), text)
        if k.startswith("Fn::"):
            sys.exit(f"translate.py: {where}: unsupported intrinsic {k}")
    return {k: resolve(x, values, where) for k, x in v.items()}


if __name__ == "__main__":
    main()
