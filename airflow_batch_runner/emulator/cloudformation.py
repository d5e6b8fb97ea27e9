"""CloudFormation templates with ``AWS::Batch::*`` resources, refused by name.

moto's CloudFormation would create them in moto's own Batch, which this emulator's Batch (the one that runs
jobs) cannot see: the stack would report resources no Batch call finds. CloudFormation refuses a template
whose resource types it does not know with ``ValidationError`` "Template format error: Unrecognized resource
types: [...]"; the emulator answers the same way for Batch types, naming the limitation.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from moto.cloudformation.utils import get_stack_from_s3_url

# The calls that take a template (TemplateBody, or TemplateURL to an object in the emulator's S3).
TEMPLATE_ACTIONS = frozenset({"CreateStack", "UpdateStack", "CreateChangeSet", "CreateStackSet", "UpdateStackSet"})
# A resource's ``Type`` in JSON or YAML, quoted or not.
BATCH_TYPE_RE = re.compile(r"""\bType["']?\s*:\s*["']?(AWS::Batch::[A-Za-z]+)""")
ACCOUNT = "123456789012"


def refusal(action: str, body: bytes) -> str | None:
    """The ValidationError message for a template with Batch resources; None for any other request."""
    if action not in TEMPLATE_ACTIONS:
        return None
    params = parse_qs(body.decode("utf-8", "replace"))
    template = (params.get("TemplateBody") or [""])[0]
    url = (params.get("TemplateURL") or [""])[0]
    if not template and url:
        try:
            template = get_stack_from_s3_url(url, account_id=ACCOUNT, partition="aws")
        except Exception:  # moto answers an unreadable URL itself, below
            return None
    types = sorted(set(BATCH_TYPE_RE.findall(template)))
    if not types:
        return None
    return (
        f"Template format error: Unrecognized resource types: [{', '.join(types)}]. AWS::Batch resources are not "
        "supported by this emulator's CloudFormation (they would land in a Batch that runs no job); "
        "create them with the Batch API"
    )
