"""castgate-example-plugin: what castgate finds through the ``castgate`` entry point.

castgate registers this module with pluggy and calls the functions marked ``@castgate.hookimpl``;
their names must be hook names from castgate's hookspecs (a misspelling is a load error).
"""

from __future__ import annotations

from collections.abc import Sequence

import castgate
from castgate_example.countries import COUNTRY
from castgate_example.webhook import ExampleWebhook


@castgate.hookimpl
def castgate_register_vendors() -> Sequence[castgate.Vendor]:
    return [ExampleWebhook()]


@castgate.hookimpl
def castgate_register_functions() -> Sequence[castgate.PolicyFunction]:
    return [COUNTRY]
