"""``operator.ingress.tls`` reaches the operator only when set (octo-spec §4.6: ``ingress.tls`` "if set")."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.shipping.chart import CENTRAL_VALUES, EDGE_VALUES, container_env, one, template


def _env(values: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, Any]]:
    return container_env(one(template(values, tmp_path), "Deployment"))


def test_no_tls_variable_unless_tls_is_set(tmp_path: Path) -> None:
    env = _env(EDGE_VALUES, tmp_path)
    assert not [name for name in env if name.startswith("OPERATOR__INGRESS__")]


@pytest.mark.parametrize("tls", [True, False])
def test_a_set_tls_value_is_passed_as_it_is(tls: bool, tmp_path: Path) -> None:
    values = copy.deepcopy(CENTRAL_VALUES)
    values["operator"]["ingress"]["tls"] = tls
    assert _env(values, tmp_path)["OPERATOR__INGRESS__TLS"]["value"] == str(tls).lower()
