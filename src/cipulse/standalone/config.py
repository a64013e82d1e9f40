"""Monitors for `cipulse up`: the same CiCdMonitor manifests `kubectl apply` takes, validated the same way.

Secrets cannot come from Kubernetes here, so a `{name, key}` reference reads the environment variable
NAME_KEY (upper-cased, other characters as `_`), e.g. `github-token`/`token` -> GITHUB_TOKEN_TOKEN;
the GitHub token falls back to GITHUB_TOKEN, but only for monitors of github.com itself: a token meant for
github.com is never sent to another host (a GitHub Enterprise Server `apiUrl` needs its own variable).
The spec's URL rule applies unchanged (credentials over https only; plain http only to loopback). The
operator's Secret opt-in labels do not: here the person who runs `cipulse up` supplies every secret
through their own environment, so no one else's secret can be named.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cipulse.operator.crd import GROUP, KIND, VERSION
from cipulse.operator.spec import MonitorSpec, SecretKeyRef, parse_spec

DEFAULT_NAMESPACE = "default"


class ConfigError(ValueError):
    """The monitors file is unusable; the message says where and why."""


@dataclass(frozen=True, slots=True)
class MonitorEntry:
    name: str
    namespace: str
    spec: MonitorSpec

    @property
    def key(self) -> str:
        """Same key as the operator's, so a store can move between the two modes."""
        return f"{self.namespace}/{self.name}"


def env_name(ref: SecretKeyRef) -> str:
    return re.sub(r"[^A-Z0-9]", "_", f"{ref.name}_{ref.key}".upper())


def resolve_secret(ref: SecretKeyRef, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    variable = env_name(ref)
    value = environ.get(variable)
    if not value:
        raise LookupError(f"secret {ref.name}/{ref.key}: set the environment variable {variable}")
    return value


GITHUB_COM_API = "https://api.github.com"


def resolve_token(spec: MonitorSpec, environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    if spec.token_secret_ref is not None:
        value = environ.get(env_name(spec.token_secret_ref))
        if value:
            return value
    if spec.api_url.rstrip("/") != GITHUB_COM_API:
        return None
    return environ.get("GITHUB_TOKEN") or None


def _entry(doc: Any, where: str) -> MonitorEntry:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a {KIND} mapping")
    if doc.get("kind") != KIND or doc.get("apiVersion") != f"{GROUP}/{VERSION}":
        raise ConfigError(f"{where}: expected apiVersion {GROUP}/{VERSION} and kind {KIND}")
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
        raise ConfigError(f"{where}: metadata.name must be a DNS subdomain name")
    try:
        spec = parse_spec(doc.get("spec") or {})
    except ValidationError as error:
        problems = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{where} ({name}): {problems}") from None
    return MonitorEntry(name=name, namespace=str(meta.get("namespace") or DEFAULT_NAMESPACE), spec=spec)


def load_monitors(path: Path) -> list[MonitorEntry]:
    """All CiCdMonitor documents in a YAML stream; other kinds (Secrets in the sample) are skipped."""
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {error}") from None
    entries = [
        _entry(doc, f"{path} document {index + 1}")
        for index, doc in enumerate(docs)
        if doc is not None and not (isinstance(doc, dict) and doc.get("kind") not in (None, KIND))
    ]
    if not entries:
        raise ConfigError(f"{path}: no {KIND} documents")
    keys = [entry.key for entry in entries]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ConfigError(f"{path}: monitor names must be unique, repeated: {', '.join(duplicates)}")
    return entries
