"""Audit the installed dependencies (the pins as resolved in this environment) for known
vulnerabilities with pip-audit, and print every finding.

    python scripts/security_audit.py                 # PyPI's vulnerability data (default)
    python scripts/security_audit.py --service osv   # OSV's
    python scripts/security_audit.py --service pypi-latest   # without pip-audit (below)
    python scripts/security_audit.py --json audit.json

pip-audit asks the vulnerability service about each installed distribution and version
(``pip-audit --local``: this virtual environment, dev tools included, the project itself
skipped). It prints one line per finding: package, installed version, advisory id (and
aliases), fixed versions.

Where pip-audit cannot reach the service it reports the packages as "not found on PyPI" (a
proxy that serves PyPI's package index but not its per-version JSON API, or no route to OSV):
those are listed as not audited, never counted as clean.

``--service pypi-latest`` is the equivalent for such a proxy, without pip-audit: PyPI's
*project* JSON (``/pypi/<name>/json``) lists the advisories that affect the project's latest
release. A distribution installed at its latest release is audited by that list; one installed
at an older release is reported as not audited (advisories fixed in between are not in the
list), with the latest release named, so the gap is visible and can be closed by upgrading.

Exit status: 0 when every package was audited and none has a finding, 1 when there are
findings, 2 when some packages could not be audited (the findings still printed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path


def run_pip_audit(service: str) -> list[dict]:
    """pip-audit's dependency entries (name, version, vulns, skip_reason) for this
    environment."""
    exe = Path(sys.executable).parent / "pip-audit"
    cmd = [str(exe), "--local", "--skip-editable", "--format", "json", "--progress-spinner",
           "off", "--aliases", "on", "--desc", "off", "--vulnerability-service", service]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"pip-audit could not run (exit {proc.returncode}): {last[-500:]}")
    return json.loads(proc.stdout)["dependencies"]


def run_pypi_latest(index: str = "https://pypi.org/pypi") -> list[dict]:
    """pip-audit-shaped entries from PyPI's project JSON: ``vulns`` for the distributions
    installed at their latest release, a ``skip_reason`` for the others and for any that
    could not be fetched."""
    import urllib.error
    import urllib.request

    from packaging.utils import canonicalize_name
    from packaging.version import Version

    if not index.startswith("https://"):
        raise ValueError(f"the package index must be an https URL, not {index!r}")
    seen, deps = set(), []
    for dist in sorted(importlib.metadata.distributions(),
                       key=lambda d: canonicalize_name(d.metadata["Name"])):
        name = canonicalize_name(dist.metadata["Name"])
        if name in seen or name == "clv-models":  # this project is not on PyPI
            continue
        seen.add(name)
        version = dist.version
        url = f"{index}/{name}/json"
        try:
            # an https URL built from a constant index and a canonical package name
            with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 # nosec B310
                data = json.load(resp)
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            deps.append({"name": name, "skip_reason": f"{url} unreachable: {exc}"})
            continue
        latest = data["info"]["version"]
        if Version(latest) != Version(version):
            deps.append({"name": name, "skip_reason": f"installed {version}, latest {latest}: "
                                                      "PyPI lists advisories of the latest only"})
            continue
        deps.append({"name": name, "version": version, "vulns": [
            {"id": v["id"], "aliases": v.get("aliases") or [],
             "fix_versions": v.get("fixed_in") or []}
            for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]})
    return deps


def _installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("pypi", "osv", "pypi-latest"), default="pypi")
    parser.add_argument("--json", type=Path, help="write the findings and skips here")
    args = parser.parse_args()

    deps = run_pypi_latest() if args.service == "pypi-latest" else run_pip_audit(args.service)
    findings, unaudited = [], []
    for dep in deps:
        name = dep["name"]
        if name == "clv-models":  # this project, installed editable
            continue
        if "skip_reason" in dep:  # skipped entries carry no version: read it here
            unaudited.append({"name": name, "version": _installed_version(name),
                              "reason": dep["skip_reason"]})
            continue
        findings += [{"name": name, "version": dep["version"], **v}
                     for v in dep.get("vulns", [])]

    audited = sum(1 for d in deps if "skip_reason" not in d and d["name"] != "clv-models")
    print(f"pip-audit ({args.service}) over {audited + len(unaudited)} installed distributions "
          f"(this project aside): {audited} audited, {len(unaudited)} not audited")
    for f in findings:
        aliases = f" ({', '.join(f['aliases'])})" if f.get("aliases") else ""
        fixed = ", ".join(f.get("fix_versions") or []) or "no fixed version"
        print(f"FINDING {f['name']} {f['version']}: {f['id']}{aliases}; fixed in {fixed}")
    if unaudited:
        for reason in sorted({u["reason"].split(":")[0] for u in unaudited}):
            print(f"not audited ({reason}): " + ", ".join(
                f"{u['name']} {u['version']}" for u in unaudited
                if u["reason"].split(":")[0] == reason))
    print(f"{len(findings)} finding(s)")
    if args.json:
        args.json.write_text(json.dumps({"service": args.service, "findings": findings,
                                         "not_audited": unaudited, "packages": len(deps)},
                                        indent=2))
    return 1 if findings else 2 if unaudited else 0


if __name__ == "__main__":
    sys.exit(main())
